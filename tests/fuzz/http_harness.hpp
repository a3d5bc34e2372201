#pragma once

// Serves one connection's bytes with a real httplib::Server (the Debian library the node
// links), without a socket: what a client sent is read from memory, what the server answers
// is collected. Requests on the connection are served one after another (keep-alive and
// pipelining), as the server's own connection loop would, up to a bound.

#include <httplib.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace convoy::fuzz {

class memory_stream final : public httplib::Stream {
public:
  explicit memory_stream(std::string_view input) : input_(input) {}

  bool is_readable() const override { return true; }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    auto n = std::min(size, input_.size());
    input_.copy(ptr, n);
    input_.remove_prefix(n);
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    output.append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 40000;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 8080;
  }
  socket_t socket() const override { return -1; }

  bool exhausted() const { return input_.empty(); }

  std::string output;

private:
  std::string_view input_;
};

struct response {
  std::string method;
  std::string path;
  int status = -1;
  std::string content_type;
  std::string body;
  /// The request asked for byte ranges: httplib then sends those slices of any body, even of
  /// an error's JSON, so the body need not be whole.
  bool ranged = false;
};

class memory_server final : public httplib::Server {
public:
  memory_server() {
    set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      responses_.push_back({req.method, req.path, res.status, res.get_header_value("Content-Type"),
                            res.body, !req.ranges.empty()});
    });
  }

  /// The responses written for `input`, in order; a last one with status -1 when the server
  /// wrote anything but responses.
  std::vector<response> serve(std::string_view input, size_t max_requests = 8) {
    responses_.clear();
    memory_stream stream(input);
    for (size_t i = 0; i < max_requests && !stream.exhausted(); ++i) {
      bool closed = false;
      if (!process_request(stream, i + 1 == max_requests, closed, nullptr) || closed)
        break;
    }
    if (!stream.output.empty() && stream.output.rfind("HTTP/1.1 ", 0) != 0)
      responses_.push_back({});
    return std::move(responses_);
  }

private:
  std::vector<response> responses_;
};

} // namespace convoy::fuzz
