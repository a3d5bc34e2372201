#pragma once

#include "convoy/runtime/hosts.hpp"
#include "convoy/runtime/supervisor.hpp"

#include <caf/fwd.hpp>

#include <functional>
#include <memory>
#include <string>

namespace convoy::runtime {

/// The node's place in the cluster, kept in the MessageBox (no BASP needed to notice a dead
/// node, and no clock agreement: leases use the Redis server's time).
///
/// Every `timing.heartbeat_ms` it
/// - renews this node's lease (`timing.lease_ttl_ms`) with the hosts it runs now, its load
///   (instances in memory) and its throttle state, and learns the processing backlog; if the
///   node had been declared dead meanwhile (a long pause, a partition), its processing host
///   drops everything in memory: that work was taken over and every write from here would be
///   fenced;
/// - takes or renews the cluster supervisor's lease; while it holds it (one node at a time,
///   with a fencing epoch), declares dead every node whose lease lapsed and assigns what each
///   left pending in each host queue to the least-loaded live node running that host;
/// - carries out the take-overs assigned to this node (they come with the heartbeat's reply):
///   its host of the same kind claims the dead node's pending entries and rehydrates the
///   instances they are for;
/// - for each single-active host of this node, takes or renews the host's lease: the holder
///   starts the host under the node supervisor (`host_spec`), a node that loses it (or cannot
///   renew it for a lease period) stops it;
/// - about once a second, records the node's supervision tree in its node record when it
///   changed (`convoy tree`).
/// The assignments are in the MessageBox, so a cluster supervisor that dies midway leaves
/// nothing undone: the next holder assigns again, and every step is idempotent.
///
/// With the cluster link on (`[cluster]`), the cluster supervisor also keeps a mutual-TLS
/// BASP connection to every node and watches it. When one drops (missed BASP heartbeats: a
/// hung or cut-off node), it tries once to connect again; if that fails too, it ends the
/// node's lease at once (fenced by its own lease epoch), so the work moves without waiting
/// for the lease to lapse. It hands each new take-over to its target by remote-spawning a
/// `convoy.relocator` there (the assignment in the MessageBox stays the source of truth: a
/// target that misses the spawn gets it with its next heartbeat).
///
/// Runs as a child of the node supervisor `root`.
/// Registers the `convoy.relocator` actor type that cluster supervisors remote-spawn: call on
/// every node's configuration when the cluster link is on.
void add_relocator_type(caf::actor_system_config& cfg);

caf::actor spawn_membership(caf::actor_system& sys, std::shared_ptr<const host_services> svc,
                            caf::actor root,
                            std::function<child_spec(const std::string& host)> host_spec);

} // namespace convoy::runtime
