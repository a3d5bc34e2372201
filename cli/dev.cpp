#include "cli.hpp"
#include "output.hpp"

#include "convoy/persistence/message_box.hpp"
#include "convoy/runtime/node.hpp"
#include "examples.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <cstring>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace convoy::cli {

namespace {

namespace fs = std::filesystem;

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  uint16_t port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0
      && ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  if (fd >= 0)
    ::close(fd);
  return port;
}

std::string find_on_path(const std::string& name) {
  auto path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    auto end = dirs.find(':', start);
    auto dir = dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
    auto candidate = fs::path(dir.empty() ? "." : dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0)
      return candidate.string();
    if (end == std::string::npos)
      break;
    start = end + 1;
  }
  return {};
}

/// The dev Redis: started in a temporary folder on a loopback port, stopped by its PID.
class dev_redis {
public:
  ~dev_redis() { stop(); }

  std::string start(uint16_t port) {
    auto exe = find_on_path("redis-server");
    if (exe.empty())
      return "redis-server is not on PATH: run scripts/install-deps (Debian package redis-server)";
    char templ[] = "/tmp/convoy-dev-XXXXXX";
    if (::mkdtemp(templ) == nullptr)
      return "cannot create a temporary folder under /tmp";
    dir_ = templ;
    port_ = port != 0 ? port : free_port();
    std::vector<std::string> args{exe,         "--bind",        "127.0.0.1",
                                  "--port",    std::to_string(port_),
                                  "--dir",     dir_.string(),   "--save",
                                  "",          "--appendonly",  "yes",
                                  "--daemonize", "no",          "--logfile",
                                  (dir_ / "redis.log").string()};
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none); // our SIGINT/SIGTERM block must not be inherited
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    // Redis logs to its file; its standard streams must not hold our terminal or pipe open.
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    for (int fd : {0, 1, 2})
      posix_spawn_file_actions_addopen(&files, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
    auto rc = posix_spawn(&pid_, exe.c_str(), &files, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&files);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
      pid_ = -1;
      return "cannot start " + exe + ": " + std::strerror(rc);
    }
    return {};
  }

  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      for (int i = 0; i < 100; ++i) {
        if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
          pid_ = -1;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
      }
    }
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
      dir_.clear();
    }
  }

  bool alive() const { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }
  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  const fs::path& dir() const { return dir_; }
  std::string log_tail() const {
    std::ifstream in(dir_ / "redis.log");
    std::string line, last;
    while (std::getline(in, line))
      last = line;
    return last;
  }

private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  fs::path dir_;
};

} // namespace

int run_dev(const dev_options& opts) {
  // Progress is for watching: flush every line, also into pipes and log files.
  std::cout.setf(std::ios::unitbuf);
  spdlog::set_pattern("%H:%M:%S.%e %^%-5l%$ %v");
  spdlog::set_level(opts.verbose ? spdlog::level::debug : spdlog::level::warn);
  dev_redis redis;
  if (auto err = redis.start(opts.port); !err.empty()) {
    std::cerr << "convoy dev: " << err << "\n";
    return 3;
  }
  runtime::node_config cfg;
  cfg.name = "dev-node";
  cfg.redis.port = redis.port();
  cfg.reclaim_idle = std::chrono::milliseconds(2000);
  persistence::message_box_config mcfg;
  mcfg.endpoint = cfg.redis;
  persistence::message_box probe(mcfg);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (probe.commands().run({"PING"}, std::chrono::milliseconds(200)).str != "PONG") {
    if (!redis.alive() || std::chrono::steady_clock::now() > deadline) {
      std::cerr << "convoy dev: redis-server on port " << redis.port()
                << " did not come up: " << redis.log_tail() << "\n";
      return 3;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto state_file = dev_state_file();
  std::ofstream(state_file) << cfg.redis.address() << "\n";

  registry reg;
  examples::register_all(reg);
  int exit_code = 0;
  {
    runtime::node node(cfg, reg);
    if (auto err = node.start(); !err.empty()) {
      std::cerr << "convoy dev: the node cannot start: " << err << "\n";
      std::filesystem::remove(state_file);
      return 3;
    }
    std::cout << "Convoy dev\n"
              << "  MessageBox   redis-server pid " << redis.pid() << " at "
              << cfg.redis.address() << " (data in " << redis.dir().string() << ")\n"
              << "  node         " << cfg.name << " running hosts receive, processing, send\n"
              << "  inspect      convoy orch list   |   convoy orch describe hello-1\n"
              << "  start more   convoy orch start hello '\"Ada\"'\n"
              << (opts.once ? "  mode         --once: exits when the examples are done\n"
                            : "  stop         Ctrl-C\n")
              << "\n";
    auto sink = (redis.dir() / "effects.log").string();
    auto& box = node.message_box();
    auto submit = [&](const char* id, const char* type, const json& input) {
      if (auto err = box.submit("receive", type, input.dump(), id); !err.empty()) {
        std::cerr << "convoy dev: cannot submit " << id << ": " << err << "\n";
        exit_code = 3;
      }
    };
    auto publish = [&](const char* type, const json& body,
                       std::map<std::string, std::string> props, const char* id = "") {
      if (auto err = box.submit_message("receive", type, body.dump(), props, id); !err.empty()) {
        std::cerr << "convoy dev: cannot publish " << type << ": " << err << "\n";
        exit_code = 3;
      }
    };
    // The examples, each showing one part of the programming model.
    submit("hello-1", "hello", "world");                                  // call + durable timer
    publish("order", json{{"id", "1001"}, {"customer", "ada"}, {"amount", 250.0}},
            {{"order-id", "1001"}}, "order-1001");                        // activation + correlation
    publish("payment", json{{"amount", 250.0}}, {{"order-id", "1001"}});  // routed to order-1001
    publish("order", json{{"id", "1002"}, {"customer", "bob"}, {"amount", 5000.0}},
            {{"order-id", "1002"}}, "order-1002");                        // rejected by credit check
    for (int i = 1; i <= 3; ++i)                                          // a sequential convoy
      publish("item", json{{"batch", "b-7"}, {"seq", i}, {"value", 10 * i}, {"last", i == 3}},
              {{"batch-id", "b-7"}}, "batch-b-7");
    submit("quote-1", "best-quote",
           json{{"item", "widget"}, {"suppliers", {"acme", "globex", "initech"}}}); // scatter-gather
    submit("trip-1", "trip", json{{"to", "Lisbon"}, {"unavailable", "car"}}); // saga rolls back
    submit("counter-1", "counter", json::object());                      // signals, continue_as_new
    submit("greet-1", "greet-all", json{"Ada", "Grace"});                // child orchestrations
    submit("steps-1", "steps", json{{"count", 4}, {"sink", sink}, {"pause_ms", 100}});
    std::vector<std::string> demo{"hello-1",  "order-1001", "order-1002", "batch-b-7", "quote-1",
                                  "trip-1",   "counter-1",  "greet-1",    "steps-1"};
    bool signalled = false;
    // Watch the MessageBox and print every change of status or progress.
    std::map<std::string, std::pair<instance_status, uint32_t>> seen;
    auto started = std::chrono::steady_clock::now();
    while (exit_code == 0) {
      if (auto sig = wait_for_stop_signal(200); sig != 0) {
        std::cout << "\nsignal " << sig << ": stopping\n";
        break;
      }
      auto listed = node.message_box().list_instances(1000);
      if (!listed.error.empty()) {
        std::cerr << "convoy dev: reading the MessageBox failed: " << listed.error << "\n";
        continue;
      }
      size_t demo_done = 0;
      if (!signalled)
        for (const auto& r : listed.instances)
          if (r.id == "counter-1") {
            // Five numbers, then stop: the third makes it continue_as_new with its total.
            for (auto n : {5, 7, 9, 1})
              box.send_to_instance("counter-1", "signal", "add", std::to_string(n));
            box.send_to_instance("counter-1", "signal", "add", "\"stop\"");
            signalled = true;
          }
      for (const auto& r : listed.instances) {
        auto& last = seen[r.id];
        if (last != std::make_pair(r.status, r.steps) || last.first == instance_status::pending) {
          if (last != std::make_pair(r.status, r.steps)) {
            std::cout << "  " << pad_to(r.id, 20) << pad_to(std::string(to_string(r.status)), 10)
                      << "steps " << r.steps;
            if (r.status == instance_status::completed)
              std::cout << "  result " << r.result;
            if (!r.error.empty())
              std::cout << "  error " << r.error;
            std::cout << "\n";
          }
          last = {r.status, r.steps};
        }
        for (const auto& d : demo)
          if (r.id == d && is_final(r.status))
            ++demo_done;
      }
      if (opts.once && demo_done == demo.size()) {
        std::cout << "\n" << instances_table(listed.instances);
        for (const auto& r : listed.instances)
          if (r.status != instance_status::completed)
            exit_code = 1;
        break;
      }
      if (opts.once && std::chrono::steady_clock::now() - started > std::chrono::seconds(60)) {
        std::cerr << "convoy dev: the examples did not finish within 60 s\n";
        exit_code = 1;
      }
    }
    node.stop();
  }
  std::filesystem::remove(state_file);
  redis.stop();
  std::cout << "stopped the node and redis-server (pid stopped by SIGTERM)\n";
  return exit_code;
}

} // namespace convoy::cli
