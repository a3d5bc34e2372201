#pragma once

#include "convoy/runtime/hosts.hpp"

#include <caf/fwd.hpp>

#include <map>
#include <memory>
#include <string>

namespace convoy::runtime {

/// The node's place in the cluster, kept in the MessageBox (no BASP needed to notice a dead
/// node, and no clock agreement: leases use the Redis server's time).
///
/// Every `timing.heartbeat_ms` it
/// - renews this node's lease (`timing.lease_ttl_ms`) with the hosts it runs and its load
///   (instances in memory); if the node had been declared dead meanwhile (a long pause, a
///   partition), its processing host drops everything in memory: that work was taken over
///   and every write from here would be fenced;
/// - takes or renews the cluster supervisor's lease; while it holds it (one node at a time,
///   with a fencing epoch), declares dead every node whose lease lapsed and assigns what each
///   left pending in each host queue to the least-loaded live node running that host;
/// - carries out the take-overs assigned to this node: its host of the same kind claims the
///   dead node's pending entries and rehydrates the instances they are for.
/// The assignments are in the MessageBox, so a cluster supervisor that dies midway leaves
/// nothing undone: the next holder assigns again, and every step is idempotent.
caf::actor spawn_membership(caf::actor_system& sys, std::shared_ptr<const host_services> svc,
                            std::map<std::string, caf::actor> local_hosts);

} // namespace convoy::runtime
