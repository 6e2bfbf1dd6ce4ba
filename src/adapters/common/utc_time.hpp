// UTC timestamps as the credential file and the SDK signers write them, to Unix epoch
// milliseconds. Used by the credential store (token expiry), the AK/SK verifier and the client's
// signer (X-Sdk-Date).
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dlipkg {

// RFC 3339: "2027-01-01T00:00:00Z", "2027-01-01T08:00:00+08:00", optional ".fff" fraction.
std::optional<std::int64_t> ParseRfc3339Ms(std::string_view text);

// The SDK signers' basic format, always UTC: "20191115T033655Z".
std::optional<std::int64_t> ParseSdkDateMs(std::string_view text);

// The same basic format for a signer's X-Sdk-Date: "20191115T033655Z".
std::string FormatSdkDate(std::int64_t epoch_ms);
// "2019-11-15T03:36:55Z" (for messages).
std::string FormatUtc(std::int64_t epoch_ms);

}  // namespace dlipkg
