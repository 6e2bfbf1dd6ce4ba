#include "adapters/sources/source_policy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <memory>

namespace dlipkg {
namespace {

namespace fs = std::filesystem;

struct Range {
  std::array<std::uint8_t, 16> base;
  std::size_t prefix_bits;
};

// Refused unless allowed (SSRF defence). 240/4 includes the broadcast address.
constexpr Range kRestrictedV4[] = {
    {{0}, 8},        {{10}, 8},        {{100, 64}, 10}, {{127}, 8}, {{169, 254}, 16},
    {{172, 16}, 12}, {{192, 168}, 16}, {{224}, 4},      {{240}, 4},
};
// ::/96 holds the unspecified and loopback addresses and the deprecated IPv4-compatible forms.
constexpr Range kRestrictedV6[] = {
    {{0}, 96}, {{0xfc}, 7}, {{0xfe, 0x80}, 10}, {{0xfe, 0xc0}, 10}, {{0xff}, 8},
};
// NAT64 (RFC 6052) reaches the IPv4 address in its last four bytes.
constexpr Range kNat64{{0x00, 0x64, 0xff, 0x9b}, 96};

bool InPrefix(std::span<const std::uint8_t> address, std::span<const std::uint8_t> base,
              std::size_t prefix_bits) {
  const std::size_t whole = prefix_bits / 8, rest = prefix_bits % 8;
  if (!std::equal(address.begin(), address.begin() + whole, base.begin())) return false;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (address[whole] & mask) == (base[whole] & mask);
}

bool InAnyRange(const IpAddress& address, std::span<const Range> ranges) {
  return std::ranges::any_of(ranges, [&](const Range& range) {
    return InPrefix(std::span(address.bytes).first(address.length), range.base, range.prefix_bits);
  });
}

bool HasHostBits(const IpAddress& address, std::size_t prefix_bits) {
  for (std::size_t bit = prefix_bits; bit < address.length * 8; ++bit) {
    if (address.bytes[bit / 8] & (0x80 >> (bit % 8))) return true;
  }
  return false;
}

std::string NormalizedHost(std::string_view host) {
  if (host.ends_with('.')) host.remove_suffix(1);
  std::string lower(host);
  std::ranges::transform(lower, lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower;
}

bool IsHostName(std::string_view text) {
  return !text.empty() && text.front() != '.' && text.front() != '-' &&
         std::ranges::all_of(text, [](unsigned char c) {
           return std::isalnum(c) || c == '-' || c == '.' || c == '_';
         });
}

std::unexpected<Error> BadEntry(std::string_view setting, std::string_view entry,
                                std::string_view why) {
  return Fail(ErrorCode::kBadRequest,
              std::string(setting) + " entry '" + std::string(entry) + "' " + std::string(why));
}

}  // namespace

std::optional<IpAddress> ParseIpAddress(std::string_view text) {
  const std::string copy(text);  // inet_pton needs a terminated string
  std::array<std::uint8_t, 16> bytes{};
  if (inet_pton(AF_INET, copy.c_str(), bytes.data()) == 1)
    return IpAddressFromBytes(std::span(bytes).first(4));
  if (inet_pton(AF_INET6, copy.c_str(), bytes.data()) == 1) return IpAddressFromBytes(bytes);
  return std::nullopt;
}

std::optional<IpAddress> IpAddressFromBytes(std::span<const std::uint8_t> bytes) {
  static constexpr std::uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (bytes.size() == 16 && std::ranges::equal(bytes.first(12), kMappedPrefix))
    bytes = bytes.subspan(12);
  if (bytes.size() != 4 && bytes.size() != 16) return std::nullopt;
  IpAddress address;
  std::ranges::copy(bytes, address.bytes.begin());
  address.length = bytes.size();
  return address;
}

bool IsRestricted(const IpAddress& address) {
  if (address.length == 4) return InAnyRange(address, kRestrictedV4);
  if (InPrefix(address.bytes, kNat64.base, kNat64.prefix_bits))
    return IsRestricted(*IpAddressFromBytes(std::span(address.bytes).subspan(12)));
  return InAnyRange(address, kRestrictedV6);
}

Result<AddressPolicy::Entries> AddressPolicy::ParseEntries(
    std::string_view setting, const std::vector<std::string>& entries) {
  Entries parsed;
  for (const std::string& entry : entries) {
    const auto slash = entry.find('/');
    const auto ip = ParseIpAddress(std::string_view(entry).substr(0, slash));
    if (!ip && slash == std::string::npos && IsHostName(entry)) {
      parsed.hosts.push_back(NormalizedHost(entry));
      continue;
    }
    if (!ip) return BadEntry(setting, entry, "is not a host name, IP address or CIDR");
    // A mapped IPv6 network (::ffff:a.b.c.d/N) was stored as IPv4: its prefix loses 96 bits.
    const std::size_t spelled_bits = entry.find(':') != std::string::npos ? 128 : 32;
    std::size_t prefix = spelled_bits;
    if (slash != std::string::npos) {
      const char* first = entry.data() + slash + 1;
      const char* last = entry.data() + entry.size();
      const auto [end, ec] = std::from_chars(first, last, prefix);
      if (ec != std::errc() || end != last || first == last || prefix > spelled_bits)
        return BadEntry(setting, entry, "has a bad prefix length");
    }
    const std::size_t dropped = spelled_bits - ip->length * 8;
    if (prefix < dropped) return BadEntry(setting, entry, "is wider than the IPv4-mapped range");
    const Network network{*ip, prefix - dropped};
    // "10.1.2.3/8" is more likely a typo than a wish for 10/8: refuse rather than guess.
    if (HasHostBits(network.base, network.prefix_bits))
      return BadEntry(setting, entry, "has bits set beyond its prefix length");
    parsed.networks.push_back(network);
  }
  return parsed;
}

bool AddressPolicy::Entries::HasHost(std::string_view host) const {
  return std::ranges::find(hosts, NormalizedHost(host)) != hosts.end();
}

bool AddressPolicy::Entries::HasAddress(const IpAddress& address) const {
  return std::ranges::any_of(networks, [&](const Network& network) {
    return network.base.length == address.length &&
           InPrefix(std::span(address.bytes).first(address.length), network.base.bytes,
                    network.prefix_bits);
  });
}

Result<AddressPolicy> AddressPolicy::Create(const std::vector<std::string>& allow_sources,
                                            const std::vector<std::string>& deny_sources) {
  auto allowed = ParseEntries("--allow-source", allow_sources);
  if (!allowed) return std::unexpected(allowed.error());
  auto denied = ParseEntries("--deny-source", deny_sources);
  if (!denied) return std::unexpected(denied.error());
  AddressPolicy policy;
  policy.allowed_ = std::move(*allowed);
  policy.denied_ = std::move(*denied);
  return policy;
}

AddressVerdict AddressPolicy::Judge(std::string_view host, const IpAddress& address,
                                    bool host_trusted) const {
  if (denied_.HasHost(host) || denied_.HasAddress(address)) return AddressVerdict::kDenied;
  if (!IsRestricted(address) || host_trusted || allowed_.HasHost(host) ||
      allowed_.HasAddress(address))
    return AddressVerdict::kAllowed;
  return AddressVerdict::kRestricted;
}

bool AddressPolicy::DeniesHost(std::string_view host) const { return denied_.HasHost(host); }

Result<FileRoots> FileRoots::Create(const std::vector<fs::path>& roots) {
  FileRoots file_roots;
  for (const fs::path& root : roots) {
    std::error_code ec;
    fs::path real = fs::canonical(root, ec);
    if (ec || !fs::is_directory(real, ec))
      return BadEntry("--allow-file-root", root.string(), "is not an existing directory");
    auto fd = OpenFd(real, O_PATH | O_DIRECTORY);
    if (!fd) return BadEntry("--allow-file-root", root.string(), "cannot be opened");
    fs::path spelled = fs::absolute(root, ec).lexically_normal();
    if (spelled.has_filename() == false) spelled = spelled.parent_path();
    file_roots.roots_.push_back(Root{.spelled = std::move(spelled),
                                     .real = std::move(real),
                                     .fd = std::make_shared<UniqueFd>(std::move(*fd))});
  }
  return file_roots;
}

namespace {

// The rest of `path` below `root`, or nullopt when `path` is not strictly below it.
std::optional<fs::path> Below(const fs::path& root, const fs::path& path) {
  const auto [root_end, path_end] =
      std::mismatch(root.begin(), root.end(), path.begin(), path.end());
  if (root_end != root.end() || path_end == path.end()) return std::nullopt;
  fs::path rest;
  for (auto part = path_end; part != path.end(); ++part) rest /= *part;
  return rest;
}

constexpr int kReadFlags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;

// openat2 where the kernel has it; ENOSYS otherwise (glibc has no wrapper).
std::expected<UniqueFd, int> OpenBeneath(int root_fd, const fs::path& relative) {
  open_how how{};
  how.flags = kReadFlags;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  for (;;) {
    const long fd = ::syscall(SYS_openat2, root_fd, relative.c_str(), &how, sizeof how);
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    if (errno != EINTR && errno != EAGAIN) return std::unexpected(errno);
  }
}

// The fallback: one openat(O_NOFOLLOW) per component, each from the descriptor of the last, so
// no component can be a symlink and none is looked up twice. `relative` has no "." or "..".
std::expected<UniqueFd, int> WalkBeneath(int root_fd, const fs::path& relative) {
  UniqueFd dir;
  int at = root_fd;
  for (auto part = relative.begin(); part != relative.end(); ++part) {
    const bool last = std::next(part) == relative.end();
    const int flags = last ? kReadFlags : (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int fd;
    do {
      fd = ::openat(at, part->c_str(), flags);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return std::unexpected(errno);
    if (last) return UniqueFd(fd);
    dir = UniqueFd(fd);
    at = dir.Get();
  }
  return std::unexpected(EISDIR);
}

}  // namespace

std::optional<std::pair<const FileRoots::Root*, fs::path>> FileRoots::Split(
    const fs::path& path) const {
  for (const Root& root : roots_) {
    for (const fs::path* spelling : {&root.real, &root.spelled}) {
      if (auto rest = Below(*spelling, path)) return std::pair{&root, std::move(*rest)};
    }
  }
  return std::nullopt;
}

std::expected<UniqueFd, FileRefusal> FileRoots::Open(const std::string& path) const {
  const fs::path spelled(path);
  if (!spelled.is_absolute()) return std::unexpected(FileRefusal::kNotAllowed);
  // With symlinks refused, resolving "." and ".." by the spelling is resolving them for real.
  auto split = Split(spelled.lexically_normal());
  if (!split || split->second.empty() || *split->second.begin() == "..")
    return std::unexpected(FileRefusal::kNotAllowed);
  const auto& [root, relative] = *split;
  auto fd = OpenBeneath(root->fd->Get(), relative);
  if (!fd && fd.error() == ENOSYS) fd = WalkBeneath(root->fd->Get(), relative);
  if (!fd) {
    // ELOOP (a symlink), EXDEV (an escape), EACCES, ...: one answer, whatever lies beyond.
    const bool missing = fd.error() == ENOENT || fd.error() == ENOTDIR;
    return std::unexpected(missing ? FileRefusal::kNotFound : FileRefusal::kNotAllowed);
  }
  struct stat st {};
  // Devices, FIFOs and directories are refused: reading them could block or never end.
  if (::fstat(fd->Get(), &st) != 0 || !S_ISREG(st.st_mode))
    return std::unexpected(FileRefusal::kNotAllowed);
  return std::move(*fd);
}

}  // namespace dlipkg
