// B8 job-queue-peer: the 3-step flow of B7 through a real convoy node, against BullMQ workers
// (npm bullmq, bench/peers/bullmq_flow.js) on the same redis-server.
//
// Ours: one `convoy node` process (flow_bench.hpp), a burst of N flows (the steps example with
// count 3) submitted one after the other through `message_box::submit` (one XADD each, as fast
// as they go); completed flows per second from the first submission to the last "completed"
// event of the node's tracking stream.
// Peer: one Node.js process per round (started outside the timed window): queues step1..3
// (prefix "bull"), one Worker per queue (concurrency 16), each step's processor adding the
// next step's job; the same N flows added one `await add` at a time; flows per second from
// the first add to the step3 worker's last completion, timed by the script itself.
// 5 rounds alternating ours / BullMQ after one unrecorded warm-up each. BullMQ comes from
// bench/peers/node_modules, installed by bench/run (npm); without it the result is an error.

#include "flow_bench.hpp"

#include "convoy/test/temp_dir.hpp"

namespace {

using namespace convoy;
using namespace convoy::bench;

constexpr int bullmq_concurrency = 16;

std::string read_version(const std::string& package_json) {
  std::ifstream in(package_json);
  auto j = ojson::parse(in, nullptr, false);
  return j.is_object() ? j.value("version", std::string("?")) : std::string("?");
}

} // namespace

int main(int argc, char** argv) {
  auto opts = parse_options(argc, argv);
  start_bench("B8", "job-queue-peer", opts.quick ? 150s : 600s);
  const size_t flows = opts.quick ? 300 : 2000;
  const int rounds = 5;

  const auto peers = bench_source_dir() + "/peers";
  const auto bullmq_pkg = peers + "/node_modules/bullmq/package.json";
  if (!on_path("node"))
    fail("node (Node.js) not found: the BullMQ peer needs it");
  if (!fs::exists(bullmq_pkg))
    fail("bullmq is not installed in " + peers
         + "/node_modules (bench/run installs it with npm; was the npm registry reachable?)");
  auto node_version = run_child({"node", "--version"}, 30s).out;
  while (!node_version.empty() && node_version.back() == '\n')
    node_version.pop_back();

  test::temp_dir dir;
  auto redis = test::redis_server::start(dir.path());
  node_process node(dir.path(), redis);
  event_observer obs(redis.port(), node.box().key_schema().tracking());
  auto redis_version = node.box().server_version();

  raw_redis admin("127.0.0.1", redis.port());
  cpu_per_flow ours_cpu, peer_cpu;
  int serial = 0;
  auto ours = [&] {
    auto stem = "b" + std::to_string(serial++) + "-";
    auto r0 = redis_cpu_s(admin);
    auto c0 = process_cpu_s(node.pid()) + self_cpu_s();
    auto t0 = submit_paced(flows, 0, stem, [&](const std::string& id) {
      return node.box().submit("receive", "steps", flow_input(), id);
    });
    auto r = completed_rate(obs, flows, stem, t0, 0, 60s);
    if (obs.count() < flows)
      node.give_up("only " + std::to_string(obs.count()) + " of " + std::to_string(flows)
                   + " flows completed within 60 s");
    ours_cpu.add(redis_cpu_s(admin) - r0, process_cpu_s(node.pid()) + self_cpu_s() - c0, flows);
    obs.clear();
    return r;
  };
  auto bullmq = [&] {
    auto r0 = redis_cpu_s(admin);
    auto r = run_child({"node", peers + "/bullmq_flow.js", std::to_string(redis.port()),
                        std::to_string(flows), std::to_string(bullmq_concurrency)},
                       180s);
    auto j = last_json_line(r.out);
    if (j.is_object() && j.contains("error"))
      fail("BullMQ peer: " + j["error"].get<std::string>());
    if (!r.ok() || !j.is_object())
      fail("BullMQ peer: " + (r.error.empty() ? "no result" : r.error));
    peer_cpu.add(redis_cpu_s(admin) - r0, r.cpu_s, flows);
    return j.at("flows_per_s").get<double>();
  };

  ours();
  bullmq();
  ours_cpu = {};
  peer_cpu = {};
  std::vector<double> o, p;
  for (int round = 0; round < rounds; ++round) {
    o.push_back(ours());
    p.push_back(bullmq());
  }

  ojson cases = ojson::array();
  cases.push_back(make_case(ojson{{"flows", flows},
                                  {"steps_per_flow", 3},
                                  {"bullmq_worker_concurrency", bullmq_concurrency}},
                            summarize(o), "BullMQ " + read_version(bullmq_pkg) + " workers",
                            summarize(p), ">= 5"));
  cases.back()["cpu_per_flow"] =
    cpu_view(ours_cpu, peer_cpu, "ours: node + bench process; BullMQ: its Node.js process, start included");
  ojson result{
    {"id", "B8"},
    {"name", "job-queue-peer"},
    {"unit", "flows/s"},
    {"higher_is_better", true},
    {"what",
     "a burst of `flows` 3-step flows submitted one after the other (ours: message_box::submit "
     "to one real convoy node, the steps example with count 3; BullMQ: await add to queue step1, "
     "each step's worker adding the next step's job, one worker per queue with the given "
     "concurrency, in one Node.js process); completed flows per second from the first "
     "submission to the last completion. Same redis-server; 5 rounds alternating after one "
     "warm-up each."},
    {"cases", std::move(cases)},
    {"env", environment(ojson{{"redis", redis_version},
                              {"hiredis", hiredis_version()},
                              {"node", node_version},
                              {"bullmq", read_version(bullmq_pkg)}},
                        ojson{{"rounds", rounds},
                              {"quick", opts.quick},
                              {"node_settings", node.settings()}})}};
  std::cout << result.dump() << std::endl;
  return 0;
}
