// The server's rules on what a source may be (docs/sources.md): which addresses may be
// connected to (loopback, private, link-local, ... only when allowed; denied hosts and networks
// never) and which files a file:// URL may read. Used by CurlFetcher; built once from
// SourcePolicy at start-up, then read-only and safe to share between threads.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/common/posix_file.hpp"
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

enum class AddressVerdict {
  kAllowed,
  kRestricted,  // loopback, private, link-local, ... and not allowed
  kDenied,      // on the deny list: refused whatever the allow list and the address's kind say
};

class AddressPolicy {
 public:
  // Entries of both lists: host names, IP addresses or CIDRs. Errors: kBadRequest naming the
  // list and the bad entry.
  static Result<AddressPolicy> Create(const std::vector<std::string>& allow_sources,
                                      const std::vector<std::string>& deny_sources = {});
  // Whether a connection to `address`, made for a URL whose host is `host`, may go ahead.
  // Deny wins: a denied host name or a denied network refuses the connection, public or not.
  // Otherwise public addresses are allowed; restricted ones only when `host_trusted` (an
  // object-store endpoint the operator named), when `host` is an allowed name (it allows
  // whatever it resolves to) or when the address lies in an allowed network (whatever name led
  // to it).
  AddressVerdict Judge(std::string_view host, const IpAddress& address,
                       bool host_trusted = false) const;
  bool Allows(std::string_view host, const IpAddress& address) const {
    return Judge(host, address) == AddressVerdict::kAllowed;
  }
  // Whether `host` is a denied name, so a URL can be refused before its name is resolved.
  bool DeniesHost(std::string_view host) const;

 private:
  struct Network {
    IpAddress base;
    std::size_t prefix_bits = 0;
  };
  struct Entries {
    std::vector<std::string> hosts;  // lower case, no trailing dot
    std::vector<Network> networks;

    bool HasHost(std::string_view host) const;
    bool HasAddress(const IpAddress& address) const;
  };
  static Result<Entries> ParseEntries(std::string_view setting,
                                      const std::vector<std::string>& entries);

  Entries allowed_;
  Entries denied_;
};

enum class FileRefusal { kNotAllowed, kNotFound };

class FileRoots {
 public:
  // Each root must exist and be a directory; it is opened once, here. Errors: kBadRequest.
  static Result<FileRoots> Create(const std::vector<std::filesystem::path>& roots);
  // Opens `path` for reading if it names a regular file strictly below a root, as one operation
  // on descriptors: openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) from the root's descriptor
  // where the kernel has it, else an openat(O_NOFOLLOW) walk component by component. So a
  // directory swapped for a symlink between a check and the open cannot lead outside (there
  // is no separate check), and any symlink below a root is refused alike, whether its target
  // exists or not. kNotFound only for a missing file whose spelled path lies below a root, so a
  // refusal says nothing about files elsewhere. Thread-safe.
  std::expected<UniqueFd, FileRefusal> Open(const std::string& path) const;

 private:
  struct Root {
    std::filesystem::path spelled;  // as configured, made absolute and normal
    std::filesystem::path real;     // symlinks resolved
    std::shared_ptr<UniqueFd> fd;   // the directory, opened at Create
  };
  // The root `path` lies strictly below, and the rest of `path` relative to it.
  std::optional<std::pair<const Root*, std::filesystem::path>> Split(
      const std::filesystem::path& path) const;
  std::vector<Root> roots_;
};

}  // namespace dlipkg
