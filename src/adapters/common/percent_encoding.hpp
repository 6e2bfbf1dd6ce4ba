// Percent-encoding of the unreserved set of RFC 3986 (A-Z a-z 0-9 - _ . ~ kept, every other
// byte as %XX in upper-case hex), the form both AWS SigV4 and the Huawei SDK signer expect.
// Used by the object-store URL canonicaliser and the SDK-HMAC-SHA256 verifier. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace dlipkg {

bool IsUnreservedByte(unsigned char c);
// `keep_slash`: '/' stays as is (an object key's path), otherwise it is encoded too.
std::string PercentEncodeUnreserved(std::string_view bytes, bool keep_slash = false);

}  // namespace dlipkg
