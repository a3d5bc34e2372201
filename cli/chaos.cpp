// `convoy chaos ...`: runs the fault-injection tool, `convoy-chaos`, which is built from
// tests/chaos (it launches Redis, Sentinels and nodes through the test support library) and
// installed beside this executable. Everything after `chaos` goes to it unchanged.

#include "cli.hpp"

#include <CLI/CLI.hpp>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>

namespace convoy::cli {

std::function<std::optional<int>()> add_chaos_command(CLI::App& app) {
  auto args = std::make_shared<std::vector<std::string>>();
  auto chaos = app.add_subcommand(
    "chaos", "seeded fault injection against a real cluster on this machine (convoy-chaos)\n"
             "example: convoy chaos run --faults F1,F2,F3 --duration 120s --seed 7");
  // Its options belong to convoy-chaos: --help included.
  chaos->prefix_command();
  chaos->set_help_flag();
  return [chaos, args]() -> std::optional<int> {
    if (!chaos->parsed())
      return std::nullopt;
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    auto tool = (ec ? std::filesystem::path{} : self.parent_path()) / "convoy-chaos";
    if (!std::filesystem::exists(tool)) {
      std::cerr << "convoy: " << tool.string()
                << " is missing (build it: cmake --build build/release --target convoy_chaos)\n";
      return 2;
    }
    std::vector<std::string> rest = chaos->remaining();
    std::vector<char*> argv;
    auto name = tool.string();
    argv.push_back(name.data());
    for (auto& a : rest)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    // convoy blocks SIGINT/SIGTERM in every thread (block_stop_signals); the tool handles them.
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
    ::execv(name.c_str(), argv.data());
    std::cerr << "convoy: cannot run " << name << ": " << std::strerror(errno) << "\n";
    return 3;
  };
}

} // namespace convoy::cli
