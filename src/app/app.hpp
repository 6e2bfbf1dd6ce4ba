// The composition root: parses the command line, builds the object graph, runs the server.
#pragma once

namespace dlipkg::app {

// The whole program; returns the process exit code.
int Main(int argc, char** argv);

}  // namespace dlipkg::app
