#pragma once

// The decoding of Redis replies, apart from the connections that receive them: what
// tests/fuzz drives with arbitrary bytes. Not part of the component's interface.

#include "convoy/actors/instance_store.hpp"
#include "convoy/persistence/message_box.hpp"
#include "convoy/persistence/redis_value.hpp"

#include <string>
#include <vector>

struct redisReply; // hiredis
struct redisReader;

namespace convoy::persistence::internal {

/// The most elements an array reply may announce. hiredis 0.14 reserves 8 bytes per announced
/// element as soon as an array's header arrives (`*2147483647` asks for 16 GiB, a negative count
/// for more), before any element does; no Convoy reply comes near this (a journal holds at most
/// `max_journal_entries`), so a longer one is refused as corrupt.
inline constexpr long long max_reply_elements = 16 * 1024 * 1024;

/// Makes `reader` refuse arrays announcing more than `max_reply_elements` elements (or a negative
/// number other than -1, nil): the read fails ("Out of memory") and the connection is dropped.
/// Every reader the client uses is bounded so.
void bound_reader(redisReader* reader);

/// An owned copy of a hiredis reply: what every connection does with every reply.
redis_value to_value(const redisReply* reply);

/// Turns an XREADGROUP / XAUTOCLAIM entry list into queue entries. Entries whose body was
/// deleted (nil) are returned with no fields so the caller can acknowledge them.
std::vector<queue_entry> parse_entries(const redis_value& list);

/// Decodes a journal read back as a list reply into `out`; returns "" or what is corrupt.
std::string decode_journal(const redis_value& list, const std::string& instance_id,
                           std::vector<journal_entry>& out);

/// The store status a reply to a persistence point means.
store_status classify(const redis_value& v);

} // namespace convoy::persistence::internal
