#include "client/cli.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <iostream>
#include <map>

#include "client/commands.hpp"
#include "client/dli_client.hpp"
#include "client/exit_status.hpp"
#include "client/http_client.hpp"

namespace dlipkg::client {
namespace {

constexpr const char* kExitStatuses =
    "Exit status: 0 ok; 1 refused or failed (400, a package FAILED, a corrupt download); "
    "2 usage (bad arguments, missing endpoint/project, unusable profile); 3 not found; "
    "4 authentication or permission (401/403); 5 server error or network failure (after "
    "retries); 6 timed out (wait).";

// The connection flags every subcommand that talks to a server accepts.
// Each subcommand has its own options bound to the same strings; `options` keeps each one's, so
// the parsed subcommand's counts tell which flags were given.
struct ConnectionText {
  std::string endpoint, project, ak, sk, token, profile;
  std::map<const CLI::App*, std::vector<CLI::Option*>> options;
};

void AddConnection(CLI::App& command, ConnectionText& text) {
  auto& options = text.options[&command];
  options = {
      command.add_option("--endpoint", text.endpoint,
                         "Server URL, e.g. http://127.0.0.1:8080 (env DLIPKG_ENDPOINT)"),
      command.add_option("--project", text.project, "Project ID (env DLIPKG_PROJECT)"),
      command.add_option("--ak", text.ak,
                         "Access key: sign requests SDK-HMAC-SHA256 (env DLIPKG_AK)"),
      command.add_option("--sk", text.sk,
                         "Secret key, with --ak (env DLIPKG_SK; prefer the env or a profile: "
                         "a command line is visible to other users)"),
      command.add_option("--token", text.token, "Send X-Auth-Token instead (env DLIPKG_TOKEN)"),
      command.add_option("--profile", text.profile,
                         "Profile in ~/.config/dlipkg/client.toml (env DLIPKG_PROFILE; default "
                         "'default')")};
  for (auto* option : options) option->group("Connection");
}

ConnectionFlags ToFlags(const ConnectionText& text, const CLI::App* command) {
  const auto found = text.options.find(command);
  if (found == text.options.end()) return {};
  ConnectionFlags flags;
  std::optional<std::string>* slots[] = {&flags.endpoint,   &flags.project, &flags.access_key,
                                         &flags.secret_key, &flags.token,   &flags.profile};
  const std::string* values[] = {&text.endpoint, &text.project, &text.ak,
                                 &text.sk,       &text.token,   &text.profile};
  for (std::size_t i = 0; i < std::size(slots); ++i)
    if (found->second[i]->count() > 0) *slots[i] = *values[i];
  return flags;
}

CLI::App* Command(CLI::App& app, const char* name, const char* about, const char* example) {
  auto* command = app.add_subcommand(name, about);
  command->footer(std::string("Example:\n  ") + example + "\n\n" + kExitStatuses);
  return command;
}

// `dlipkg push --grup etl a.py`: the first long flag the subcommand does not know, with a
// did-you-mean (CLI11 only says the argument was not expected). Stops at "--".
std::optional<std::string> UnknownFlag(const CLI::App& app, const std::vector<std::string>& args) {
  if (args.empty()) return std::nullopt;
  const CLI::App* command = nullptr;
  for (const CLI::App* sub : app.get_subcommands({}))
    if (sub->get_name() == args.front()) command = sub;
  if (command == nullptr) return std::nullopt;
  std::vector<std::string> known;
  for (const CLI::App* scope : {&app, command})
    for (const CLI::Option* option : scope->get_options())
      for (const auto& name : option->get_lnames()) known.push_back(name);
  for (auto arg = args.begin() + 1; arg != args.end() && *arg != "--"; ++arg) {
    if (!arg->starts_with("--") || arg->size() == 2) continue;
    const std::string name = arg->substr(2, arg->find('=') - 2);
    if (std::ranges::find(known, name) != known.end()) continue;
    const std::string close = ClosestMatch(name, known);
    return "unknown option '--" + name + "' for '" + args.front() + "'" +
           (close.empty() ? "" : "; did you mean '--" + close + "'?");
  }
  return std::nullopt;
}

}  // namespace

ParsedCommandLine ParseClientCommandLine(const std::vector<std::string>& args) {
  CLI::App app{"dlipkg: client of a dlipkg (DLI resources API) server."};
  app.require_subcommand(1);
  ClientOptions o;
  ConnectionText text;
  std::string group, expires = "1h";

  auto* push =
      Command(app, "push", "Upload local files (streamed) and URLs (fetched by the server)",
              "dlipkg push --group etl etl/main.py libs/udf.jar https://files.example.com/x.zip");
  push->add_option("--group", group, "Merge into this group (created if absent); else ungrouped");
  push->add_option("--kind", o.kind, "pyFile, jar, file or modelFile (default: from the extension)")
      ->check(CLI::IsMember({"pyFile", "jar", "file", "modelFile"}));
  push->add_flag("--replace", o.replace,
                 "The group becomes exactly these packages, all or nothing (needs --group)");
  push->add_flag("--async", o.is_async, "URLs: answer at once, fetch in the background (see wait)");
  push->add_option("--tag", o.tags, "KEY=VALUE tag (repeatable)")->allow_extra_args(false);
  push->add_option("PATH_OR_URL", o.arguments, "Local files; http(s)://, obs://, s3:// URLs")
      ->required();

  auto* ls = Command(app, "ls", "List packages as a table (or --json)",
                     "dlipkg ls --group etl --kind pyFile");
  ls->add_option("--group", group, "Only this group");
  ls->add_option("--kind", o.kind, "Only this kind")
      ->check(CLI::IsMember({"pyFile", "jar", "file", "modelFile"}));
  ls->add_option("--tag", o.tags, "Only packages with this KEY=VALUE tag (repeatable)")
      ->allow_extra_args(false);
  ls->add_flag("--json", o.json, "Print the server's JSON");

  auto* show = Command(app, "show", "Show one package", "dlipkg show main.py --group etl");
  show->add_option("NAME", o.arguments, "Package name")->required()->expected(1);
  show->add_option("--group", group, "The package's group");
  show->add_flag("--json", o.json, "Print the server's JSON");

  auto* get = Command(app, "get",
                      "Download a package (or a whole --group into -o DIR), verified against its "
                      "SHA-256 before it takes its name",
                      "dlipkg get main.py --group etl -o build/");
  get->add_option("NAME", o.arguments, "Package name (none: every package of --group)")
      ->expected(0, 1);
  get->add_option("--group", group, "The package's group");
  get->add_option("-o,--output", o.output, "FILE or DIR (default: the package name here)");

  auto* rm = Command(app, "rm", "Delete a package", "dlipkg rm old.py --group etl");
  rm->add_option("NAME", o.arguments, "Package name")->required()->expected(1);
  rm->add_option("--group", group, "The package's group");

  auto* chown = Command(app, "chown",
                        "Change the owner of a group, a package in it, or an "
                        "ungrouped package",
                        "dlipkg chown alice --group etl");
  chown->add_option("USER_AND_NAME", o.arguments, "USER [NAME]")->required()->expected(1, 2);
  chown->add_option("--group", group, "The group (alone: the whole group)");

  auto* wait =
      Command(app, "wait", "Wait until packages are READY or FAILED (non-zero exit if any FAILED)",
              "dlipkg wait --group etl --timeout 600");
  wait->add_option("NAME", o.arguments, "Packages (none: the whole --group)");
  wait->add_option("--group", group, "The group");
  wait->add_option("--timeout", o.timeout_s, "Give up after SECONDS (exit 6)")
      ->check(CLI::PositiveNumber);

  auto* spark = Command(app, "spark-args",
                        "Print spark-submit arguments (--py-files, --jars, --files) of presigned "
                        "URLs for the groups' READY packages",
                        "spark-submit $(dlipkg spark-args --group etl --expires 12h) main.py");
  spark->add_option("--group", o.groups, "Group (repeatable)")->required()->allow_extra_args(false);
  spark->add_option("--expires", expires, "URL lifetime: SECONDS or 30m, 12h, 2d (default 1h)");
  spark
      ->add_option("--format", o.format, "args (spark-submit flags) or conf (spark-defaults lines)")
      ->check(CLI::IsMember({"args", "conf"}));

  auto* completion = Command(app, "completion", "Print a shell completion script",
                             "source <(dlipkg completion bash)");
  completion->add_option("SHELL", o.arguments, "bash or zsh")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh"}));

  auto* configure =
      Command(app, "configure",
              "Write a profile to ~/.config/dlipkg/client.toml (mode 0600); asks for "
              "what is not given when run in a terminal, else reads the SK from stdin",
              "echo \"$SK\" | dlipkg configure --endpoint http://dli.internal:8080 "
              "--project p1 --ak AK123");

  for (auto* command : {push, ls, show, get, rm, chown, wait, spark, configure})
    AddConnection(*command, text);
  for (auto* command : {push, get})
    command->add_flag("--progress", o.progress,
                      "Draw progress bars even when stderr is not a "
                      "terminal");
  for (auto* command : {push, ls, show, get, rm, chown, wait, spark, configure})
    command->add_flag("-q,--quiet", o.quiet, "No progress, no summary: errors only");

  if (auto unknown = UnknownFlag(app, args)) {
    std::cerr << "dlipkg: " << *unknown << "\n";
    return {std::nullopt, ToInt(ExitStatus::kUsage)};
  }
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return {std::nullopt, code == 0 ? 0 : ToInt(ExitStatus::kUsage)};
  }
  const CLI::App* chosen = app.get_subcommands().front();
  o.command = chosen->get_name();
  o.connection = ToFlags(text, chosen);
  if (!group.empty()) o.groups = {group};
  const auto usage = [](const std::string& message) {
    std::cerr << "dlipkg: " << message << "\n";
    return ParsedCommandLine{std::nullopt, ToInt(ExitStatus::kUsage)};
  };
  for (const auto& tag : o.tags)
    if (!ParseTag(tag)) return usage("--tag must be KEY=VALUE, got '" + tag + "'");
  const auto lifetime = ParseDuration(expires);
  if (!lifetime) return usage("--expires must be SECONDS or a number with s, m, h or d");
  o.expires_s = *lifetime;
  if (o.command == "push" && o.replace && group.empty()) return usage("--replace needs --group");
  if (o.command == "push" && o.replace && (o.is_async || !o.tags.empty()))
    return usage("--replace commits the group at once and sets no tags: drop --async and --tag");
  if (o.command == "get" && o.arguments.empty() && group.empty())
    return usage("get needs a package NAME, or --group G to fetch the whole group");
  return {std::move(o), 0};
}

int Main(int argc, char** argv) {
  auto parsed = ParseClientCommandLine(std::vector<std::string>(argv + 1, argv + argc));
  if (!parsed.options) return parsed.exit_code;
  const auto& options = *parsed.options;
  if (options.command == "completion") return ToInt(RunCompletion(options));
  if (options.command == "configure") return ToInt(RunConfigure(options, RealGetEnv));
  auto connection =
      ResolveConnection(options.connection, RealGetEnv, DefaultProfileFile(RealGetEnv));
  if (!connection) return ToInt(Report({ExitStatus::kUsage, connection.error()}));
  HttpClient http(std::move(*connection));
  DliClient dli(http);
  using Run = ExitStatus (*)(DliClient&, const ClientOptions&);
  static const std::pair<std::string_view, Run> kRuns[] = {
      {"push", RunPush}, {"ls", RunList},     {"show", RunShow}, {"get", RunGet},
      {"rm", RunRemove}, {"chown", RunChown}, {"wait", RunWait}, {"spark-args", RunSparkArgs}};
  for (const auto& [name, run] : kRuns)
    if (name == options.command) return ToInt(run(dli, options));
  return ToInt(ExitStatus::kUsage);
}

}  // namespace dlipkg::client
