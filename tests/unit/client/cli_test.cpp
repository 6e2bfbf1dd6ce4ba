// The client's command line: subcommands and their options into ClientOptions, usage errors
// exiting 2, the values CLI11 leaves for us to check (tags, durations, --replace without a group).
#include "client/cli.hpp"

#include <gtest/gtest.h>

#include "client/commands.hpp"

namespace dlipkg::client {
namespace {

ClientOptions Parse(std::vector<std::string> args) {
  auto parsed = ParseClientCommandLine(args);
  EXPECT_TRUE(parsed.options) << "refused: " << ::testing::PrintToString(args);
  return parsed.options.value_or(ClientOptions{});
}

int ExitOf(std::vector<std::string> args) {
  auto parsed = ParseClientCommandLine(args);
  EXPECT_FALSE(parsed.options) << "accepted: " << ::testing::PrintToString(args);
  return parsed.exit_code;
}

TEST(ClientCommandLine, PushTakesGroupKindTagsFlagsAndManyPaths) {
  const auto o = Parse({"push", "--group", "etl", "--kind", "jar", "--tag", "team=data", "--tag",
                        "env=prod", "--async", "a.jar", "https://h/b.jar"});
  EXPECT_EQ(o.command, "push");
  EXPECT_EQ(o.group(), "etl");
  EXPECT_EQ(o.kind, "jar");
  EXPECT_EQ(o.tags, (std::vector<std::string>{"team=data", "env=prod"}));
  EXPECT_TRUE(o.is_async);
  EXPECT_FALSE(o.replace);
  EXPECT_TRUE(Parse({"push", "--replace", "--group", "g", "a.py"}).replace);
  EXPECT_EQ(o.arguments, (std::vector<std::string>{"a.jar", "https://h/b.jar"}));
  // A repeatable option takes one value each time, not the paths after it.
  EXPECT_EQ(Parse({"push", "--tag", "k=v", "a.py", "b.py"}).arguments.size(), 2u);
  EXPECT_FALSE(o.connection.endpoint);  // not given: left to the environment and profile
}

TEST(ClientCommandLine, ConnectionFlagsAreSetOnlyWhenGiven) {
  const auto o = Parse({"ls", "--endpoint", "http://h:1", "--project", "p1", "--ak", "A", "--sk",
                        "S", "--profile", "work"});
  EXPECT_EQ(o.connection.endpoint, "http://h:1");
  EXPECT_EQ(o.connection.project, "p1");
  EXPECT_EQ(o.connection.access_key, "A");
  EXPECT_EQ(o.connection.secret_key, "S");
  EXPECT_EQ(o.connection.profile, "work");
  EXPECT_FALSE(o.connection.token);
  EXPECT_EQ(Parse({"ls", "--token", ""}).connection.token, "");  // given, even if empty
}

TEST(ClientCommandLine, EverySubcommandParsesItsExample) {
  EXPECT_EQ(Parse({"show", "a.py", "--group", "g", "--json"}).json, true);
  EXPECT_EQ(Parse({"get", "a.py", "-o", "out/"}).output, "out/");
  EXPECT_EQ(Parse({"get", "--group", "g", "-o", "d"}).arguments.size(), 0u);
  EXPECT_EQ(Parse({"rm", "a.py"}).arguments, std::vector<std::string>{"a.py"});
  EXPECT_EQ(Parse({"chown", "alice", "b.py", "--group", "g"}).arguments.size(), 2u);
  EXPECT_DOUBLE_EQ(Parse({"wait", "--group", "g", "--timeout", "2.5"}).timeout_s, 2.5);
  const auto spark =
      Parse({"spark-args", "--group", "a", "--group", "b", "--expires", "12h", "--format", "conf"});
  EXPECT_EQ(spark.groups, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(spark.expires_s, 12 * 3600);
  EXPECT_EQ(spark.format, "conf");
  EXPECT_EQ(Parse({"completion", "zsh"}).arguments.front(), "zsh");
  EXPECT_TRUE(Parse({"push", "-q", "a.py"}).quiet);
  EXPECT_TRUE(Parse({"get", "--progress", "a.py"}).progress);
}

TEST(ClientCommandLine, UsageErrorsExitTwoAndHelpExitsZero) {
  EXPECT_EQ(ExitOf({"push"}), 2);                              // no path
  EXPECT_EQ(ExitOf({"push", "--kind", "egg", "a.py"}), 2);     // unknown kind
  EXPECT_EQ(ExitOf({"push", "--tag", "novalue", "a.py"}), 2);  // not KEY=VALUE
  EXPECT_EQ(ExitOf({"push", "--replace", "a.py"}), 2);         // --replace without --group
  EXPECT_EQ(ExitOf({"push", "--replace", "--group", "g", "--async", "a.py"}), 2);
  EXPECT_EQ(ExitOf({"push", "--replace", "--group", "g", "--tag", "k=v", "a.py"}), 2);
  EXPECT_EQ(ExitOf({"show"}), 2);
  EXPECT_EQ(ExitOf({"get"}), 2);  // neither a name nor a group
  EXPECT_EQ(ExitOf({"spark-args"}), 2);
  EXPECT_EQ(ExitOf({"spark-args", "--group", "g", "--expires", "soon"}), 2);
  EXPECT_EQ(ExitOf({"completion", "fish"}), 2);
  EXPECT_EQ(ExitOf({"ls", "--bogus"}), 2);
  EXPECT_EQ(ExitOf({"push", "--help"}), 0);
}

TEST(ClientCommandLine, AnUnknownFlagGetsADidYouMean) {
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(ExitOf({"push", "--grup", "etl", "a.py"}), 2);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "dlipkg: unknown option '--grup' for 'push'; did you mean '--group'?\n");
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(ExitOf({"ls", "--jsn"}), 2);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "dlipkg: unknown option '--jsn' for 'ls'; did you mean '--json'?\n");
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(ExitOf({"get", "--banana=1", "x"}), 2);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "dlipkg: unknown option '--banana' for 'get'\n");
  // A connection flag cut short, and a file name after "--" that looks like a flag.
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(ExitOf({"show", "--endp", "http://h", "x"}), 2);
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("did you mean '--endpoint'"),
            std::string::npos);
  EXPECT_EQ(Parse({"push", "--group", "g", "--", "--odd.py"}).arguments,
            std::vector<std::string>{"--odd.py"});
}

TEST(ClosestMatch, OnlyCloseWordsAreSuggested) {
  EXPECT_EQ(ClosestMatch("workrs", {"workers", "listen"}), "workers");
  EXPECT_EQ(ClosestMatch("serv", {"serve"}), "serve");
  EXPECT_EQ(ClosestMatch("banana", {"workers", "listen"}), "");
}

TEST(ClosestMatch, AWordCutShortSuggestsTheOneNameItBegins) {
  EXPECT_EQ(ClosestMatch("data", {"data-dir", "listen"}), "data-dir");
  EXPECT_EQ(ClosestMatch("fetch", {"fetch-timeout", "fetch-low-speed-limit"}), "");  // ambiguous
  EXPECT_EQ(ClosestMatch("da", {"data-dir"}), "");                                   // too short
}

TEST(ClientCommandLine, KnowsItsCommandsAndNotServe) {
  for (const char* name : {"push", "ls", "show", "get", "rm", "chown", "wait", "spark-args",
                           "completion", "configure"})
    EXPECT_TRUE(IsClientCommand(name)) << name;
  EXPECT_FALSE(IsClientCommand("serve"));
  EXPECT_FALSE(IsClientCommand("--help"));
}

TEST(ClientCommandLine, TagsAndDurations) {
  EXPECT_EQ(ParseTag("team=data"), (std::pair<std::string, std::string>{"team", "data"}));
  EXPECT_EQ(ParseTag("k="), (std::pair<std::string, std::string>{"k", ""}));
  EXPECT_EQ(ParseTag("a=b=c"), (std::pair<std::string, std::string>{"a", "b=c"}));
  EXPECT_FALSE(ParseTag("=v"));
  EXPECT_FALSE(ParseTag("kv"));
  EXPECT_EQ(ParseDuration("90"), 90);
  EXPECT_EQ(ParseDuration("90s"), 90);
  EXPECT_EQ(ParseDuration("30m"), 1800);
  EXPECT_EQ(ParseDuration("2h"), 7200);
  EXPECT_EQ(ParseDuration("1d"), 86400);
  for (const char* bad : {"", "0", "-5", "5w", "h", "1.5h", "99999999999999999999"})
    EXPECT_FALSE(ParseDuration(bad)) << bad;
}

}  // namespace
}  // namespace dlipkg::client
