#include "convoy/test/redis_server.hpp"

#include "convoy/test/free_loopback_port.hpp"
#include "convoy/test/wait_until.hpp"

#include <hiredis/hiredis.h>

#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string_view>

namespace convoy::test {

namespace {

/// How long a starting redis-server may take to answer PING. A restarted one loads its AOF
/// first and answers LOADING meanwhile: a 43 MB file took more than 10 s on a loaded machine
/// (seen in a 30-minute convoy chaos run, which then lost a data node for the rest of the run).
constexpr std::chrono::seconds startup_timeout{60};


using namespace std::chrono_literals;

struct context_deleter {
  void operator()(redisContext* ctx) const noexcept {
    redisFree(ctx);
  }
};

struct reply_deleter {
  void operator()(redisReply* reply) const noexcept {
    freeReplyObject(reply);
  }
};

using context_ptr = std::unique_ptr<redisContext, context_deleter>;

using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

/// Connects with `timeout` for both the connect and every later read or write.
context_ptr connect(const std::string& host, std::uint16_t port,
                    std::chrono::milliseconds timeout) {
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
  context_ptr ctx{redisConnectWithTimeout(host.c_str(), port, tv)};
  if (ctx && ctx->err == 0)
    redisSetTimeout(ctx.get(), tv);
  return ctx;
}

std::string render(const redisReply& reply) {
  switch (reply.type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      return std::string{reply.str, reply.len};
    case REDIS_REPLY_ERROR:
      return "ERR:" + std::string{reply.str, reply.len};
    case REDIS_REPLY_INTEGER:
      return std::to_string(reply.integer);
    case REDIS_REPLY_NIL:
      return "(nil)";
    case REDIS_REPLY_ARRAY: {
      std::string result;
      for (size_t i = 0; i < reply.elements; ++i) {
        if (i > 0)
          result += '\n';
        result += render(*reply.element[i]);
      }
      return result;
    }
    default:
      // Debian 12 ships hiredis 0.14 (RESP2 only), and we never send HELLO 3.
      return "ERR:unexpected reply type " + std::to_string(reply.type);
  }
}

/// Sends one command on an open connection and renders its reply.
template <class Args>
std::string run_on(redisContext& ctx, const Args& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& arg : args) {
    argv.push_back(arg.data());
    lens.push_back(arg.size());
  }
  reply_ptr reply{static_cast<redisReply*>(
    redisCommandArgv(&ctx, static_cast<int>(argv.size()), argv.data(), lens.data()))};
  if (!reply)
    return std::string{"ERR:"} + ctx.errstr;
  return render(*reply);
}

std::string run(const std::string& host, std::uint16_t port,
                std::initializer_list<std::string> args, std::chrono::milliseconds timeout) {
  auto ctx = connect(host, port, timeout);
  if (!ctx)
    return "ERR:cannot allocate a hiredis context";
  if (ctx->err != 0)
    return std::string{"ERR:connect "} + host + ':' + std::to_string(port) + ": " + ctx->errstr;
  return run_on(*ctx, args);
}

/// `redis-server` on `PATH`, or an empty path.
std::filesystem::path find_on_path(std::string_view program) {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (!dirs.empty()) {
    auto colon = dirs.find(':');
    auto dir = dirs.substr(0, colon);
    dirs = colon == std::string_view::npos ? std::string_view{} : dirs.substr(colon + 1);
    auto candidate = std::filesystem::path{dir.empty() ? "." : dir} / program;
    if (::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return {};
}

/// The last `lines` lines of `file`, or an empty string if it cannot be read.
std::string tail(const std::filesystem::path& file, size_t lines = 20) {
  std::ifstream in{file};
  std::vector<std::string> kept;
  for (std::string line; std::getline(in, line);) {
    kept.push_back(std::move(line));
    if (kept.size() > lines)
      kept.erase(kept.begin());
  }
  if (kept.empty())
    return "  (empty)\n";
  std::string result;
  for (const auto& line : kept)
    result += "  | " + line + '\n';
  return result;
}

} // namespace

redis_server redis_server::start(const std::filesystem::path& dir,
                                 std::vector<std::string> extra_args, placement where) {
  return start_impl(dir, std::move(extra_args), 0, std::move(where));
}

redis_server redis_server::start_on_port(const std::filesystem::path& dir,
                                         std::uint16_t port,
                                         std::vector<std::string> extra_args,
                                         placement where) {
  if (port == 0)
    throw std::invalid_argument("convoy::test::redis_server::start_on_port: port 0");
  return start_impl(dir, std::move(extra_args), port, std::move(where));
}

redis_server redis_server::start_impl(const std::filesystem::path& dir,
                                      std::vector<std::string> extra_args,
                                      std::uint16_t fixed_port, placement where) {
  auto binary = find_on_path("redis-server");
  if (binary.empty())
    throw std::runtime_error("convoy::test::redis_server: redis-server not found on PATH "
                             "(install it with scripts/install-deps)");
  std::filesystem::create_directories(dir);
  const auto abs_dir = std::filesystem::absolute(dir);
  // A fixed port gets one attempt: there is no other port to move to.
  const int max_attempts = fixed_port != 0 ? 1 : 3;
  std::string failure;
  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    redis_server srv;
    srv.host_ = where.host;
    srv.port_ = fixed_port != 0 ? fixed_port : free_loopback_port();
    register_host(srv.port_, srv.host_);
    const auto port = std::to_string(srv.port_);
    srv.log_file_ = abs_dir / ("redis-" + port + ".log");
    const auto out_file = abs_dir / ("redis-" + port + ".out");
    std::vector<std::string> argv{binary.string(), "--bind",     srv.host_,
                                  "--port",        port,         "--dir",
                                  abs_dir.string(), "--save",    "",
                                  "--appendonly",  "no",         "--daemonize",
                                  "no",            "--logfile",  srv.log_file_.string()};
    // Off loopback (a namespace of its own) Redis refuses clients without a password
    // unless protected mode is off; the namespace is ours and reachable only from ours.
    if (!where.loopback())
      argv.insert(argv.end(), {"--protected-mode", "no"});
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    srv.process_ = child_process::start(where.command(std::move(argv)), {}, out_file.string());
    const bool up = wait_until(
      [&srv] {
        return !srv.process_.running()
               || run(srv.host_, srv.port_, {"PING"}, 200ms) == "PONG";
      },
      startup_timeout);
    if (up && srv.process_.running())
      return srv;
    const bool exited = !srv.process_.running();
    srv.stop();
    const auto log = tail(srv.log_file_);
    const auto out = tail(out_file);
    failure = "convoy::test::redis_server: redis-server on port " + port
              + (exited ? " exited during startup" : " did not answer PING within "
                             + std::to_string(startup_timeout.count()) + " s")
              + "\nlog " + srv.log_file_.string() + ":\n" + log + "output " + out_file.string()
              + ":\n" + out;
    // Only a port lost to another process between probe and bind is worth another try.
    if (!exited || (log + out).find("in use") == std::string::npos)
      break;
  }
  throw std::runtime_error(failure);
}

std::string redis_server::address() const {
  return host_ + ':' + std::to_string(port_);
}

std::string redis_server::command(std::initializer_list<std::string> args) const {
  return run(host_, port_, args, 10s);
}

std::string redis_command(std::uint16_t port, std::initializer_list<std::string> args,
                          std::chrono::milliseconds timeout) {
  return run(host_of(port), port, args, timeout);
}

std::vector<std::string>
redis_commands(std::uint16_t port, std::initializer_list<std::vector<std::string>> commands,
               std::chrono::milliseconds timeout) {
  const std::string host = host_of(port);
  std::vector<std::string> replies;
  auto ctx = connect(host, port, timeout);
  std::string broken;
  if (!ctx)
    broken = "ERR:cannot allocate a hiredis context";
  else if (ctx->err != 0)
    broken = "ERR:connect " + host + ':' + std::to_string(port) + ": " + ctx->errstr;
  for (const auto& args : commands) {
    if (broken.empty()) {
      replies.push_back(run_on(*ctx, args));
      if (ctx->err != 0)
        broken = replies.back();
    } else {
      replies.push_back(broken);
    }
  }
  return replies;
}

long long redis_server::command_int(std::initializer_list<std::string> args) const {
  auto text = command(args);
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty())
    throw std::runtime_error("convoy::test::redis_server::command_int: not an integer: "
                             + text);
  return value;
}

} // namespace convoy::test
