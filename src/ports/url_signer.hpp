// Signs and checks presigned read URLs: an HMAC-SHA256 over what the URL grants (method, the
// package's path and the expiry) keyed with a secret every instance shares through the metadata
// store, so a URL signed by one instance is accepted by all, across restarts, until the key is
// rotated. Used by the core's UrlGrants. Thread-safe; may block briefly (it reads the key).
#pragma once

#include <string>
#include <string_view>

#include "domain/error.hpp"

namespace dlipkg {

class UrlSigner {
 public:
  virtual ~UrlSigner() = default;
  // Lower-case hex signature of `grant` (an opaque text the core builds). Errors: kInternal
  // (the key cannot be read).
  virtual Result<std::string> Sign(std::string_view grant) = 0;
  // Whether `signature` is what Sign gives for `grant` under the current key, compared in
  // constant time. Errors: kInternal.
  virtual Result<bool> Verify(std::string_view grant, std::string_view signature) = 0;
};

}  // namespace dlipkg
