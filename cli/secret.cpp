// `convoy secret init|set|remove|list|rotate|backup|restore`: the master key file of this
// machine and the credentials in the MessageBox (adapters/convoy/adapters/secrets.hpp).
// Values come in through stdin, a terminal without echo, or a named environment variable,
// never through argv (shell history, `ps`), and are never printed.

#include "cli.hpp"

#include "convoy/adapters/secrets.hpp"

#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <iostream>
#include <memory>

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

namespace convoy::cli {

namespace {

namespace fs = std::filesystem;
using adapters::secret;

struct secret_options {
  std::string key_file;
  std::string redis;
  std::string prefix;
  std::string output = "text";
  std::string name;
  std::string from_env;
  std::string file;
  bool force = false;
};

int fail(const std::string& message, int code = 1) {
  std::cerr << "convoy: " << message << "\n";
  return code;
}

/// The exit codes of the other verbs (README, CLI): 2 bad arguments, 3 the MessageBox
/// failed, 4 no such thing; 1 a problem with the key file or a stored value.
int fail(const adapters::store_error& error) {
  switch (error.code) {
    case adapters::store_errc::invalid_argument:
      return fail(error.message, 2);
    case adapters::store_errc::messagebox:
      return fail(error.message, 3);
    case adapters::store_errc::not_found:
      return fail(error.message, 4);
    default:
      return fail(error.message, 1);
  }
}

/// Reads `fd` up to end of input or, with `one_line`, the first newline, into a buffer
/// sized up front (growth would leave copies behind). Drops one trailing newline: `echo`
/// adds it and a bearer token must not carry it. nullopt when longer than `limit`.
std::optional<secret> read_all(int fd, size_t limit, bool one_line) {
  std::string buf(limit + 2, '\0');
  size_t done = 0;
  while (done < buf.size()) {
    auto n = ::read(fd, buf.data() + done, one_line ? 1 : buf.size() - done);
    if (n <= 0)
      break;
    done += static_cast<size_t>(n);
    if (one_line && buf[done - 1] == '\n')
      break;
  }
  auto strip = [&](char c) {
    if (done > 0 && buf[done - 1] == c)
      --done;
  };
  strip('\n');
  strip('\r');
  bool too_long = done > limit;
  buf.resize(done);
  secret out(std::move(buf));
  if (too_long)
    return std::nullopt;
  return out;
}

/// Asks on the controlling terminal with echo off. nullopt when there is no terminal.
std::optional<secret> ask_without_echo(const std::string& prompt, size_t limit) {
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return std::nullopt;
  termios saved{};
  bool restore = ::tcgetattr(fd, &saved) == 0;
  if (restore) {
    auto quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  [[maybe_unused]] auto w1 = ::write(fd, prompt.data(), prompt.size());
  auto answer = read_all(fd, limit, true);
  if (restore)
    ::tcsetattr(fd, TCSAFLUSH, &saved);
  [[maybe_unused]] auto w2 = ::write(fd, "\n", 1);
  ::close(fd);
  return answer;
}

/// The backup passphrase: $CONVOY_SECRET_PASSPHRASE, else asked on the terminal (twice when
/// writing, so that a typo does not make a backup nobody can open).
std::optional<secret> passphrase(bool confirm, std::string& error) {
  constexpr size_t limit = 1024;
  if (auto env = std::getenv("CONVOY_SECRET_PASSPHRASE"); env && *env)
    return secret(std::string(env));
  auto first = ask_without_echo("passphrase: ", limit);
  if (!first) {
    error = "no passphrase: set CONVOY_SECRET_PASSPHRASE or run on a terminal "
            "(at most 1024 characters)";
    return std::nullopt;
  }
  if (confirm) {
    auto again = ask_without_echo("passphrase again: ", limit);
    if (!again || again->view() != first->view()) {
      error = "the two passphrases differ; nothing was written";
      return std::nullopt;
    }
  }
  return first;
}

/// The value for `secret set`: from the named variable, a terminal (asked without echo),
/// or whatever stdin holds.
std::optional<secret> credential_value(const secret_options& o, std::string& error) {
  std::optional<secret> value;
  if (!o.from_env.empty()) {
    auto env = std::getenv(o.from_env.c_str());
    if (!env) {
      error = "environment variable " + o.from_env + " (from --from-env) is not set";
      return std::nullopt;
    }
    value = secret(std::string(env));
  } else if (::isatty(STDIN_FILENO)) {
    value = ask_without_echo("value of " + o.name + ": ", adapters::max_credential_bytes);
  } else {
    value = read_all(STDIN_FILENO, adapters::max_credential_bytes, false);
  }
  if (!value || value->size() > adapters::max_credential_bytes)
    error = "the value of credential '" + o.name + "' is longer than "
            + std::to_string(adapters::max_credential_bytes) + " bytes";
  else if (value->empty())
    error = "the value of credential '" + o.name + "' is empty (give it on stdin or with "
            "--from-env VAR)";
  else
    return value;
  return std::nullopt;
}

/// Connects to the MessageBox and opens the credential store, then runs `fn(store)`.
template <class F>
int with_store(const secret_options& o, F&& fn) {
  target t;
  if (auto err = resolve_target(o.redis, o.prefix, t); !err.empty())
    return fail(err, 2);
  persistence::redis_loop loop;
  persistence::redis_connection redis(loop, t.endpoint);
  auto store = adapters::credential_store::open(adapters::default_key_file(o.key_file), redis,
                                                t.prefix);
  if (auto err = std::get_if<std::string>(&store))
    return fail(*err);
  return fn(std::get<adapters::credential_store>(store));
}

int run_init(const secret_options& o) {
  auto path = adapters::default_key_file(o.key_file);
  auto key = adapters::master_key::generate();
  if (!key)
    return fail("OpenSSL's random generator failed");
  adapters::key_ring ring{std::move(*key), {}};
  if (auto err = adapters::create_key_file(path, ring); !err.empty())
    return fail(err);
  std::cout << "created master key " << ring.current.id << " in " << path.string()
            << " (mode 0600); back it up with convoy secret backup FILE\n";
  return 0;
}

int run_set(const secret_options& o) {
  std::string error;
  auto value = credential_value(o, error);
  if (!value)
    return fail(error, 2);
  return with_store(o, [&](adapters::credential_store& store) {
    if (auto err = store.set(o.name, value->view()))
      return fail(*err);
    std::cout << "stored credential " << o.name << " (" << value->size()
              << " bytes, master key " << store.keys()->current.id << ")\n";
    return 0;
  });
}

int run_remove(const secret_options& o) {
  return with_store(o, [&](adapters::credential_store& store) {
    if (auto err = store.remove(o.name))
      return fail(*err);
    std::cout << "removed credential " << o.name << "\n";
    return 0;
  });
}

int run_list(const secret_options& o) {
  return with_store(o, [&](adapters::credential_store& store) {
    auto listed = store.list();
    if (auto err = std::get_if<adapters::store_error>(&listed))
      return fail(*err);
    const auto& creds = std::get<std::vector<adapters::credential_info>>(listed);
    if (o.output == "json") {
      auto out = nlohmann::json{{"key_file", store.key_file().string()},
                                {"key_id", store.keys()->current.id},
                                {"credentials", nlohmann::json::array()}};
      for (const auto& c : creds)
        out["credentials"].push_back({{"name", c.name}, {"key_id", c.key_id}, {"length", c.length}});
      std::cout << out.dump(2) << "\n";
      return 0;
    }
    std::cout << "master key " << store.keys()->describe() << " in " << store.key_file().string()
              << "\n";
    size_t width = 4;
    for (const auto& c : creds)
      width = std::max(width, c.name.size());
    std::cout << "NAME" << std::string(width - 2, ' ') << "KEY       LENGTH\n";
    for (const auto& c : creds)
      std::cout << c.name << std::string(width + 2 - c.name.size(), ' ')
                << (c.key_id.empty() ? "?" : c.key_id) << std::string(c.key_id.empty() ? 9 : 2, ' ')
                << c.length << "\n";
    return 0;
  });
}

int run_rotate(const secret_options& o) {
  return with_store(o, [&](adapters::credential_store& store) {
    auto done = store.rotate();
    if (auto err = std::get_if<adapters::store_error>(&done))
      return fail(*err);
    const auto& r = std::get<adapters::credential_store::rotation>(done);
    std::cout << "rotated master key " << r.old_id << " -> " << r.new_id << ": re-encrypted "
              << r.credentials << " credentials; key file " << store.key_file().string()
              << " holds only the new key. Every other machine needs it too: convoy secret "
                 "backup FILE here, convoy secret restore FILE --force there\n";
    return 0;
  });
}

int run_backup(const secret_options& o) {
  auto ring = adapters::load_key_file(adapters::default_key_file(o.key_file));
  if (auto err = std::get_if<std::string>(&ring))
    return fail(*err);
  std::string error;
  auto pass = passphrase(true, error);
  if (!pass)
    return fail(error);
  if (auto err = adapters::write_backup(o.file, std::get<adapters::key_ring>(ring), pass->view());
      !err.empty())
    return fail(err);
  std::cout << "wrote master key " << std::get<adapters::key_ring>(ring).current.id
            << " to " << o.file << " (mode 0600, encrypted under the passphrase)\n";
  return 0;
}

int run_restore(const secret_options& o) {
  auto path = adapters::default_key_file(o.key_file);
  std::error_code ec;
  if (fs::exists(path, ec) && !o.force)
    return fail("key file " + path.string() + " already exists; add --force to replace it"
                " (after a rotation elsewhere, that is what this machine needs)");
  std::string error;
  auto pass = passphrase(false, error);
  if (!pass)
    return fail(error);
  auto ring = adapters::read_backup(o.file, pass->view());
  if (auto err = std::get_if<std::string>(&ring))
    return fail(*err);
  auto& restored = std::get<adapters::key_ring>(ring);
  auto err = fs::exists(path, ec) ? adapters::replace_key_file(path, restored)
                                  : adapters::create_key_file(path, restored);
  if (!err.empty())
    return fail(err);
  std::cout << "restored master key " << restored.describe() << " into " << path.string()
            << " (mode 0600)\n";
  return 0;
}

} // namespace

std::function<std::optional<int>()> add_secret_commands(CLI::App& app) {
  auto o = std::make_shared<secret_options>();
  auto cmd = app.add_subcommand(
    "secret", "the master key of this machine and the credentials in the MessageBox\n"
              "(key file: --key-file, else $CONVOY_SECRET_FILE, else ~/.config/convoy/master.key)\n"
              "example: convoy secret list");
  cmd->require_subcommand(1);
  auto key_file = [o](CLI::App* sub) {
    sub->add_option("--key-file", o->key_file, "master key file (env CONVOY_SECRET_FILE)");
  };
  auto box = [o, key_file](CLI::App* sub) {
    key_file(sub);
    sub->add_option("--redis", o->redis, "MessageBox address host:port (env CONVOY_REDIS)");
    sub->add_option("--prefix", o->prefix, "key prefix (env CONVOY_PREFIX, default convoy:)");
  };
  auto name_check = CLI::Validator(
    [](std::string& name) { return adapters::check_credential_name(name); }, "NAME");

  auto init = cmd->add_subcommand(
    "init", "create a new master key in a new key file (mode 0600); never overwrites one\n"
            "example: convoy secret init --key-file /etc/convoy/master.key");
  key_file(init);

  auto set = cmd->add_subcommand(
    "set", "store a credential, encrypted with the master key; the value is read from stdin\n"
           "(one trailing newline dropped), asked without echo on a terminal, or taken from\n"
           "--from-env, never from the command line\n"
           "example: printf %s \"$TOKEN\" | convoy secret set http.orders.token");
  box(set);
  set->add_option("NAME", o->name, "credential name: 1-128 of A-Z a-z 0-9 . _ -")
    ->required()
    ->check(name_check);
  set->add_option("--from-env", o->from_env, "read the value from this environment variable");

  auto remove = cmd->add_subcommand(
    "remove", "delete a credential\nexample: convoy secret remove http.orders.token");
  box(remove);
  remove->add_option("NAME", o->name, "credential name")->required()->check(name_check);

  auto list = cmd->add_subcommand(
    "list", "credential names, master key ids and lengths; never values\n"
            "example: convoy secret list -o json");
  box(list);
  list->add_option("-o,--output", o->output, "output format")
    ->check(CLI::IsMember({"text", "json"}));

  auto rotate = cmd->add_subcommand(
    "rotate", "make a new master key and re-encrypt every credential with it, atomically\n"
              "example: convoy secret rotate && convoy secret backup master-$(date +%F).bak");
  box(rotate);

  auto backup = cmd->add_subcommand(
    "backup", "write the master key to FILE (mode 0600) encrypted under a passphrase\n"
              "($CONVOY_SECRET_PASSPHRASE, else asked twice on the terminal)\n"
              "example: convoy secret backup /media/usb/convoy-master.bak");
  key_file(backup);
  backup->add_option("FILE", o->file, "backup file to create (never overwritten)")->required();

  auto restore = cmd->add_subcommand(
    "restore", "write the master key from a backup into the key file (mode 0600)\n"
               "example: convoy secret restore /media/usb/convoy-master.bak --force");
  key_file(restore);
  restore->add_option("FILE", o->file, "backup file written by convoy secret backup")
    ->required();
  restore->add_flag("--force", o->force, "replace an existing key file");

  return [=]() -> std::optional<int> {
    if (init->parsed())
      return run_init(*o);
    if (set->parsed())
      return run_set(*o);
    if (remove->parsed())
      return run_remove(*o);
    if (list->parsed())
      return run_list(*o);
    if (rotate->parsed())
      return run_rotate(*o);
    if (backup->parsed())
      return run_backup(*o);
    if (restore->parsed())
      return run_restore(*o);
    return std::nullopt;
  };
}

} // namespace convoy::cli
