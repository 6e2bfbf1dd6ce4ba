#include "app/app.hpp"

int main(int argc, char** argv) { return dlipkg::app::Main(argc, argv); }
