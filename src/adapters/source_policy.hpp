// The server's rules on what a source may be (spec/api.md section 5): which addresses may be
// connected to (loopback, private, link-local, ... only when allowed) and which files a file://
// URL may read. Used by CurlFetcher; built once from SourcePolicy at start-up, then read-only and
// safe to share between threads.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "domain/error.hpp"

namespace dlipkg {

// An IPv4 or IPv6 address. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are stored as the IPv4
// address they carry, so every check sees one form.
struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};
  std::size_t length = 0;  // 4 or 16
};

std::optional<IpAddress> ParseIpAddress(std::string_view text);
// From network-order bytes (4 or 16 of them); nullopt for any other length.
std::optional<IpAddress> IpAddressFromBytes(std::span<const std::uint8_t> bytes);
// Loopback, private, shared (100.64/10), link-local, unspecified, multicast, broadcast/reserved.
bool IsRestricted(const IpAddress& address);

class AddressPolicy {
 public:
  // Entries: host names, IP addresses or CIDRs. Errors: kBadRequest naming the bad entry.
  static Result<AddressPolicy> Create(const std::vector<std::string>& allow_sources);
  // Whether a connection to `address`, made for a URL whose host is `host`, may go ahead.
  // An allowed host name allows whatever it resolves to; an allowed address or network allows
  // the connection whatever name led to it.
  bool Allows(std::string_view host, const IpAddress& address) const;

 private:
  struct Network {
    IpAddress base;
    std::size_t prefix_bits = 0;
  };
  std::vector<std::string> hosts_;  // lower case, no trailing dot
  std::vector<Network> networks_;
};

enum class FileRefusal { kNotAllowed, kNotFound };

class FileRoots {
 public:
  // Each root must exist and be a directory; kept with symlinks resolved. Errors: kBadRequest.
  static Result<FileRoots> Create(const std::vector<std::filesystem::path>& roots);
  // The real path (symlinks and dot segments resolved) of `path` if it names a regular file
  // strictly below a root. kNotFound only for a missing file whose spelled path lies below a
  // root, so a refusal says nothing about files elsewhere.
  std::expected<std::filesystem::path, FileRefusal> Resolve(const std::string& path) const;

 private:
  bool IsBelowRoot(const std::filesystem::path& path) const;
  std::vector<std::filesystem::path> roots_;
};

}  // namespace dlipkg
