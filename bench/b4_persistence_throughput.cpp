// B4 persistence-throughput: persistence points per second through the MessageBox at batch
// 1, 16, 64 and 256 (points in flight at once, one per instance), with AOF off, everysec and
// always, against a raw hiredis pipeline doing the same Redis work on the same server.
//
// - Ours: `message_box::write` of a checkpoint carrying one journal entry and one activity
//   command (`convoy_checkpoint`: fencing read, RPUSH journal, XADD activity to the send
//   queue, HSET record, XADD tracking). A group = one point for each of `batch` instances
//   (created with activate + claim), issued at once; the next group starts when every
//   callback of this one ran.
// - Peer: the same keys, fields and bytes as `batch` pipelined MULTI/HSET/RPUSH/XADD/XADD/EXEC
//   transactions on one synchronous hiredis connection, then all replies read.
// - Each cell: one unrecorded warm-up, then rounds alternating ours / peer; a window is a
//   fixed time (250 ms; --quick 60 ms) or 200 000 points, whichever comes first. Journals and
//   the send queue are deleted between windows (outside them). One redis-server per AOF mode
//   (AOF rewrites off), in a temporary folder, stopped by PID.

#include "redis_bench.hpp"

#include "convoy/test/temp_dir.hpp"

namespace {

using namespace convoy;
using namespace convoy::bench;

} // namespace

int main(int argc, char** argv) try {
  auto opts = parse_options(argc, argv);
  start_bench("B4", "persistence-throughput", opts.quick ? 120s : 300s);
  const int rounds = opts.quick ? 5 : 7;
  const auto window = opts.quick ? 60ms : 250ms;
  const std::vector<size_t> batches{1, 16, 64, 256};
  const std::vector<std::string> aof_modes{"off", "everysec", "always"};
  const size_t max_batch = 256;

  test::temp_dir dir;
  ojson cases = ojson::array();
  std::string redis_version;
  for (const auto& aof : aof_modes) {
    auto server = test::redis_server::start(dir.path() / ("aof-" + aof), aof_args(aof));
    watchdog_owns(server.pid(), dir.path().c_str());
    {
      auto box = make_box(loopback(server.port()), "ours:");
      redis_version = box->server_version();
      point_sides sides(*box, server.port(), max_batch);
      for (auto batch : batches) {
        auto s = sides.alternate_rates(batch, rounds, window);
        auto c = make_case(ojson{{"batch", batch}, {"aof", aof}}, summarize(s.rate[0]),
                           "raw hiredis pipeline (MULTI/HSET/RPUSH/XADD/XADD/EXEC)",
                           summarize(s.rate[1]), ">= 0.7");
        c["detail"] = s.cpu_detail();
        cases.push_back(std::move(c));
      }
    }
    server.stop();
    watchdog_owns(0, dir.path().c_str());
  }
  watchdog_owns(0);

  ojson result{
    {"id", "B4"},
    {"name", "persistence-throughput"},
    {"unit", "points/s"},
    {"higher_is_better", true},
    {"what",
     "Persistence points per second. A point = one journal entry + one activity command of "
     "one instance. Ours: message_box::write (FCALL convoy_checkpoint) for `batch` instances at "
     "once, next group when all callbacks ran. Peer: the same writes (HSET record, RPUSH "
     "journal, XADD activity, XADD tracking) as `batch` pipelined MULTI/EXEC transactions on "
     "one synchronous hiredis connection; no fencing read. Same redis-server, per AOF mode."},
    {"peer_counts_commits", peer_counts_commits()},
    {"cases", std::move(cases)},
    {"env", environment(ojson{{"redis", redis_version}, {"hiredis", hiredis_version()}},
                        ojson{{"rounds", rounds},
                              {"window_ms", window.count()},
                              {"max_points_per_window", 200000},
                              {"warmup_rounds", 1},
                              {"aof_rewrite", "off (auto-aof-rewrite-percentage 0)"},
                              {"data_dir", dir.path().string()},
                              {"quick", opts.quick}})}};
  std::cout << result.dump() << std::endl;
  return 0;
} catch (const std::exception& e) {
  fail(std::string("exception: ") + e.what());
}
