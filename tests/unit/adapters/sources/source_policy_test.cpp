#include "adapters/sources/source_policy.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include "adapters/sources/curl_fetcher.hpp"
#include "testing/temp_dir.hpp"

namespace dlipkg {
namespace {

namespace fs = std::filesystem;

TEST(IsRestrictedAddress, Table) {
  const struct {
    const char* ip;
    std::optional<bool> restricted;
  } cases[] = {
      {"127.0.0.1", true},
      {"127.1.2.3", true},
      {"10.1.1.1", true},
      {"172.16.0.1", true},
      {"172.31.255.255", true},
      {"172.32.0.1", false},
      {"192.168.1.1", true},
      {"169.254.169.254", true},
      {"0.0.0.0", true},
      {"100.64.0.1", true},
      {"224.0.0.1", true},
      {"255.255.255.255", true},
      {"::1", true},
      {"::", true},
      {"fe80::1", true},
      {"fc00::1", true},
      {"fd12::1", true},
      {"ff02::1", true},
      {"::ffff:127.0.0.1", true},
      {"::ffff:10.0.0.1", true},
      {"64:ff9b::10.0.0.1", true},
      {"8.8.8.8", false},
      {"2001:4860::8888", false},
      {"::ffff:8.8.8.8", false},
      {"example.com", std::nullopt},
      {"127.1", std::nullopt},
      {"", std::nullopt},
  };
  for (const auto& c : cases) EXPECT_EQ(IsRestrictedAddress(c.ip), c.restricted) << c.ip;
}

IpAddress Ip(const char* text) { return ParseIpAddress(text).value(); }

TEST(AddressPolicy, PublicAddressesNeedNoAllowance) {
  const auto policy = AddressPolicy::Create({}).value();
  EXPECT_TRUE(policy.Allows("dns.google", Ip("8.8.8.8")));
  EXPECT_FALSE(policy.Allows("localhost", Ip("127.0.0.1")));
}

TEST(AddressPolicy, HostNameAllowsWhateverItResolvesTo) {
  const auto policy = AddressPolicy::Create({"Files.Internal."}).value();
  EXPECT_TRUE(policy.Allows("files.internal", Ip("10.9.8.7")));
  EXPECT_TRUE(policy.Allows("FILES.INTERNAL", Ip("::1")));
  EXPECT_FALSE(policy.Allows("other.internal", Ip("10.9.8.7")));
}

TEST(AddressPolicy, NetworksAllowTheirAddressesWhateverTheName) {
  const auto policy = AddressPolicy::Create({"10.0.0.0/8", "fd00::/8", "127.0.0.1"}).value();
  EXPECT_TRUE(policy.Allows("anything", Ip("10.200.0.1")));
  EXPECT_TRUE(policy.Allows("anything", Ip("::ffff:10.200.0.1")));
  EXPECT_TRUE(policy.Allows("anything", Ip("fd00::5")));
  EXPECT_TRUE(policy.Allows("localhost", Ip("127.0.0.1")));
  EXPECT_FALSE(policy.Allows("localhost", Ip("127.0.0.2")));
  EXPECT_FALSE(policy.Allows("anything", Ip("192.168.0.1")));
  EXPECT_FALSE(policy.Allows("anything", Ip("fe80::1")));
}

TEST(AddressPolicy, MappedNetworkCoversItsIpv4Addresses) {
  const auto policy = AddressPolicy::Create({"::ffff:192.168.0.0/112"}).value();
  EXPECT_TRUE(policy.Allows("x", Ip("192.168.3.4")));
  EXPECT_FALSE(policy.Allows("x", Ip("10.0.0.1")));
}

TEST(AddressPolicy, BadEntriesAreNamed) {
  for (const char* entry : {"10.0.0.0/33", "10.0.0.0/", "10.1.2.3/8", "host/8", "::1/129",
                            "bad host", "", "::ffff:10.0.0.0/90", "10.0.0.0/8x"}) {
    auto policy = AddressPolicy::Create({entry});
    ASSERT_FALSE(policy) << entry;
    EXPECT_EQ(policy.error().code, ErrorCode::kBadRequest);
    EXPECT_NE(policy.error().message.find(std::string("'") + entry + "'"), std::string::npos)
        << policy.error().message;
  }
}

TEST(AddressPolicy, DenyWinsOverAllowAndOverPublic) {
  const auto policy = AddressPolicy::Create({"127.0.0.0/8", "files.internal"},
                                            {"127.0.0.2", "8.8.8.0/24", "Evil.Example.", "fd00::/8",
                                             "files.internal"})
                          .value();
  EXPECT_EQ(policy.Judge("x", Ip("127.0.0.1")), AddressVerdict::kAllowed);
  EXPECT_EQ(policy.Judge("x", Ip("127.0.0.2")), AddressVerdict::kDenied);
  EXPECT_EQ(policy.Judge("x", Ip("::ffff:127.0.0.2")), AddressVerdict::kDenied);
  EXPECT_EQ(policy.Judge("dns.google", Ip("8.8.8.8")), AddressVerdict::kDenied);
  EXPECT_EQ(policy.Judge("dns.google", Ip("8.8.4.4")), AddressVerdict::kAllowed);
  EXPECT_EQ(policy.Judge("evil.example", Ip("1.2.3.4")), AddressVerdict::kDenied);
  EXPECT_EQ(policy.Judge("x", Ip("fd00::1")), AddressVerdict::kDenied);
  // Allowed by name and denied by name: deny wins.
  EXPECT_EQ(policy.Judge("files.internal", Ip("10.0.0.1")), AddressVerdict::kDenied);
  EXPECT_EQ(policy.Judge("x", Ip("10.0.0.1")), AddressVerdict::kRestricted);
  // Even an operator-named object-store endpoint does not pass a deny entry.
  EXPECT_EQ(policy.Judge("x", Ip("127.0.0.2"), /*host_trusted=*/true), AddressVerdict::kDenied);
  EXPECT_EQ(policy.Judge("x", Ip("10.0.0.1"), /*host_trusted=*/true), AddressVerdict::kAllowed);
  EXPECT_TRUE(policy.DeniesHost("EVIL.example"));
  EXPECT_FALSE(policy.DeniesHost("sub.evil.example"));
  EXPECT_FALSE(policy.DeniesHost("8.8.8.8"));  // addresses are judged once connected
}

TEST(AddressPolicy, BadDenyEntriesAreNamed) {
  auto policy = AddressPolicy::Create({}, {"10.0.0.0/33"});
  ASSERT_FALSE(policy);
  EXPECT_NE(policy.error().message.find("--deny-source entry '10.0.0.0/33'"), std::string::npos)
      << policy.error().message;
}

// What the descriptor reads, or the refusal.
std::expected<std::string, FileRefusal> Read(const FileRoots& roots, const std::string& path) {
  auto fd = roots.Open(path);
  if (!fd) return std::unexpected(fd.error());
  std::string content(64, '\0');
  const auto n = ::read(fd->Get(), content.data(), content.size());
  content.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return content;
}

TEST(FileRoots, OpensOnlyRegularFilesStrictlyBelowARoot) {
  test::TempDir dir;
  const auto inside = dir.WriteFile("root/sub/a.txt", "a");
  const auto outside = dir.WriteFile("outside.txt", "secret");
  fs::create_symlink(outside, dir.path() / "root" / "escape");
  fs::create_symlink(dir.path() / "gone.txt", dir.path() / "root" / "escape-to-nothing");
  fs::create_symlink(dir.path(), dir.path() / "root" / "escape-dir");
  fs::create_symlink(inside, dir.path() / "root" / "alias");
  const auto roots = FileRoots::Create({dir.path() / "root"}).value();

  EXPECT_EQ(Read(roots, inside.string()), "a");
  EXPECT_EQ(Read(roots, (dir.path() / "root/sub/../sub/./a.txt").string()), "a");
  const std::string refused[] = {
      // Any symlink is refused, inside or out, its target existing or not (issue 15, bug 3:
      // "not found" for a missing target used to tell what lies outside the root).
      (dir.path() / "root/escape").string(),
      (dir.path() / "root/escape-to-nothing").string(),
      (dir.path() / "root/escape-dir/outside.txt").string(),
      (dir.path() / "root/escape-dir/gone.txt").string(),
      (dir.path() / "root/alias").string(),
      (dir.path() / "root/../outside.txt").string(),
      (dir.path() / "root").string(),
      (dir.path() / "root/sub").string(),
      "/etc/passwd",
      "relative/a.txt",
      "/nonexistent/file",
  };
  for (const auto& path : refused)
    EXPECT_EQ(Read(roots, path), std::unexpected(FileRefusal::kNotAllowed)) << path;
  EXPECT_EQ(Read(roots, (dir.path() / "root/missing.txt").string()),
            std::unexpected(FileRefusal::kNotFound));
  EXPECT_EQ(Read(roots, (dir.path() / "root/sub/missing/a.txt").string()),
            std::unexpected(FileRefusal::kNotFound));
}

TEST(FileRoots, MissingRootIsAStartUpError) {
  auto roots = FileRoots::Create({"/nonexistent/dlipkg/root"});
  ASSERT_FALSE(roots);
  EXPECT_EQ(roots.error().code, ErrorCode::kBadRequest);
}

}  // namespace
}  // namespace dlipkg
