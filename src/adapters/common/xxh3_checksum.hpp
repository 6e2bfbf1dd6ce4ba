// XXH3-128 from Debian's libxxhash (BodyChecksum): about 20 times the speed of SHA-256 here.
#pragma once

#include <memory>

#include "ports/body_checksum.hpp"

namespace dlipkg {

// A new XXH3-128 checksum (seed 0). Allocation failure is reported as std::bad_alloc.
std::unique_ptr<BodyChecksum> NewXxh3Checksum();

}  // namespace dlipkg
