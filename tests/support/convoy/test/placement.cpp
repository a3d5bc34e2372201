#include "convoy/test/placement.hpp"

#include <map>
#include <mutex>

namespace convoy::test {

namespace {

std::mutex registry_mutex;

std::map<std::uint16_t, std::string>& registry() {
  static std::map<std::uint16_t, std::string> hosts;
  return hosts;
}

} // namespace

void register_host(std::uint16_t port, std::string host) {
  std::lock_guard<std::mutex> guard(registry_mutex);
  registry()[port] = std::move(host);
}

std::string host_of(std::uint16_t port) {
  std::lock_guard<std::mutex> guard(registry_mutex);
  auto it = registry().find(port);
  return it == registry().end() ? std::string{"127.0.0.1"} : it->second;
}

std::string address_of(std::uint16_t port) {
  return host_of(port) + ':' + std::to_string(port);
}

} // namespace convoy::test
