// completion and configure: the subcommands that need no server.
#include <termios.h>
#include <unistd.h>

#include <iostream>

#include "client/commands.hpp"

namespace dlipkg::client {
namespace {

constexpr const char* kBash = R"(# bash completion for dlipkg: source <(dlipkg completion bash)
_dlipkg() {
  local cur prev words cword
  _init_completion 2>/dev/null || { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; cword=$COMP_CWORD; words=("${COMP_WORDS[@]}"); }
  local commands="serve push ls show get rm chown wait spark-args completion configure"
  local common="--endpoint --project --ak --sk --token --profile --quiet --help"
  if [ "$cword" -eq 1 ]; then COMPREPLY=($(compgen -W "$commands" -- "$cur")); return; fi
  case $prev in
    --kind) COMPREPLY=($(compgen -W "pyFile jar file modelFile" -- "$cur")); return ;;
    --format) COMPREPLY=($(compgen -W "args conf" -- "$cur")); return ;;
    -o|--output) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  local opts
  case ${words[1]} in
    push) opts="--group --kind --replace --async --tag --progress" ;;
    ls) opts="--group --kind --tag --json" ;;
    show) opts="--group --json" ;;
    get) opts="--group -o --output --progress" ;;
    rm|chown) opts="--group" ;;
    wait) opts="--group --timeout" ;;
    spark-args) opts="--group --expires --format" ;;
    completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")); return ;;
  esac
  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$opts $common" -- "$cur"));
  elif [ "${words[1]}" = push ]; then COMPREPLY=($(compgen -f -- "$cur")); fi
}
complete -F _dlipkg dlipkg
)";

constexpr const char* kZsh = R"(#compdef dlipkg
# zsh completion for dlipkg: dlipkg completion zsh > "${fpath[1]}/_dlipkg"
_dlipkg() {
  local -a commands common
  commands=(serve:'run the server' push:'upload files or URLs' ls:'list packages'
    show:'show one package' get:'download packages' rm:'delete a package'
    chown:'change an owner' wait:'wait for uploads' spark-args:'spark-submit arguments'
    completion:'print a completion script' configure:'write a profile')
  common=(--endpoint --project --ak --sk --token --profile --quiet --help)
  if (( CURRENT == 2 )); then _describe command commands; return; fi
  case $words[2] in
    push) _arguments '*--group[group]:group' '--kind[kind]:kind:(pyFile jar file modelFile)' \
            '--replace' '--async' '*--tag[KEY=VALUE]:tag' '--progress' '*:file:_files' ;;
    ls) _arguments '--group:group' '--kind:kind:(pyFile jar file modelFile)' '*--tag:tag' '--json' ;;
    get) _arguments '--group:group' '-o:output:_files' '*:name' ;;
    spark-args) _arguments '*--group:group' '--expires:duration' '--format:format:(args conf)' ;;
    completion) _arguments '1:shell:(bash zsh)' ;;
    *) _arguments '*:arg' ;;
  esac
}
compdef _dlipkg dlipkg
)";

// One line from stdin; without echo when `secret` and stdin is a terminal.
std::string Prompt(const char* question, bool secret) {
  std::cerr << question << std::flush;
  termios old{};
  const bool hide = secret && ::tcgetattr(STDIN_FILENO, &old) == 0;
  if (hide) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (hide) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
  }
  return line;
}

}  // namespace

ExitStatus RunCompletion(const ClientOptions& options) {
  const auto& shell = options.arguments.front();
  std::cout << (shell == "zsh" ? kZsh : kBash);
  return ExitStatus::kOk;
}

ExitStatus RunConfigure(const ClientOptions& options, const GetEnv& env) {
  const auto& flags = options.connection;
  Connection connection{.endpoint = flags.endpoint.value_or(env("DLIPKG_ENDPOINT").value_or("")),
                        .project = flags.project.value_or(env("DLIPKG_PROJECT").value_or("")),
                        .access_key = flags.access_key.value_or(env("DLIPKG_AK").value_or("")),
                        .secret_key = flags.secret_key.value_or(env("DLIPKG_SK").value_or("")),
                        .token = flags.token.value_or(env("DLIPKG_TOKEN").value_or(""))};
  const bool interactive = ::isatty(STDIN_FILENO);
  if (interactive) {
    if (connection.endpoint.empty()) connection.endpoint = Prompt("Endpoint URL: ", false);
    if (connection.project.empty()) connection.project = Prompt("Project ID: ", false);
    if (connection.access_key.empty() && connection.token.empty())
      connection.access_key = Prompt("Access key (AK; empty to use a token): ", false);
    if (!connection.access_key.empty() && connection.secret_key.empty())
      connection.secret_key = Prompt("Secret key (SK): ", true);
    if (connection.access_key.empty() && connection.token.empty())
      connection.token = Prompt("Token (empty for none): ", true);
  } else if (!connection.access_key.empty() && connection.secret_key.empty()) {
    // `echo "$SK" | dlipkg configure --ak AK ...`: the secret never on a command line.
    std::getline(std::cin, connection.secret_key);
  }
  while (connection.endpoint.ends_with('/')) connection.endpoint.pop_back();
  if (!connection.endpoint.starts_with("http://") && !connection.endpoint.starts_with("https://"))
    return Report({ExitStatus::kUsage, "configure needs --endpoint http(s)://HOST[:PORT]"});
  if (connection.project.empty()) return Report({ExitStatus::kUsage, "configure needs --project"});
  if (connection.access_key.empty() != connection.secret_key.empty())
    return Report({ExitStatus::kUsage, "--ak and --sk go together"});
  const auto file = DefaultProfileFile(env);
  const std::string name = flags.profile.value_or(env("DLIPKG_PROFILE").value_or("default"));
  if (auto written = WriteProfile(file, name, connection); !written)
    return Report({ExitStatus::kUsage, written.error()});
  if (!options.quiet) std::cout << "wrote profile [" << name << "] to " << file.string() << "\n";
  return ExitStatus::kOk;
}

}  // namespace dlipkg::client
