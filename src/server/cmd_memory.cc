// MEMORY USAGE / STATS / DOCTOR / MALLOC-STATS / PURGE / HELP. The numbers are ringkv's own:
// an entry's cost is its arena block plus its table slot, and the process totals come from the
// same sources as INFO memory.
#include <cstdio>

#include "server/info.h"
#include "server/util.h"
#include "store/arena.h"
#include "store/entry.h"

namespace ringkv::server {

void cmd_memory_usage(CommandContext& ctx) {
  // MEMORY USAGE <key> [SAMPLES <count>]: SAMPLES is checked as Redis checks it; a string has no
  // nested values to sample.
  for (size_t j = 3; j < ctx.argc(); ++j) {
    if (equals_nocase(ctx.arg(j), "samples") && j + 1 < ctx.argc()) {
      int64_t samples;
      if (!arg_int64(ctx, ctx.arg(j + 1), &samples)) return;
      if (samples < 0) {
        ctx.error(err::kSyntax);
        return;
      }
      ++j;
    } else {
      ctx.error(err::kSyntax);
      return;
    }
  }
  // The entry's arena block (header, key, value, expiry in one allocation) and its 8-byte slot
  // in the stripe's table.
  int64_t usage = with_key(ctx, ctx.arg(2), [](store::Access& a) -> int64_t {
    if (!a.found()) return -1;
    return static_cast<int64_t>(store::Arena::block_size(a.entry().size()) + sizeof(uint64_t));
  });
  if (usage < 0)
    ctx.w.null();
  else
    ctx.w.integer(usage);
}

void cmd_memory_stats(CommandContext& ctx) {
  // Redis's field names, for what ringkv measures; fields about subsystems ringkv does not have
  // (replication backlog, AOF, Lua, functions) are reported as 0.
  MemoryFigures m = memory_figures(ctx.server);
  const size_t keys = ctx.server.store().size();
  ctx.w.map(20);
  ctx.w.bulk("peak.allocated");
  ctx.w.integer(static_cast<int64_t>(m.peak));
  ctx.w.bulk("total.allocated");
  ctx.w.integer(static_cast<int64_t>(m.used));
  const size_t startup = std::min(ctx.server.startup_memory(), m.dataset);
  ctx.w.bulk("startup.allocated");
  ctx.w.integer(static_cast<int64_t>(startup));
  ctx.w.bulk("replication.backlog");
  ctx.w.integer(0);
  ctx.w.bulk("clients.slaves");
  ctx.w.integer(0);
  ctx.w.bulk("clients.normal");
  ctx.w.integer(static_cast<int64_t>(m.clients));
  ctx.w.bulk("cluster.links");
  ctx.w.integer(0);
  ctx.w.bulk("aof.buffer");
  ctx.w.integer(0);
  ctx.w.bulk("lua.caches");
  ctx.w.integer(0);
  ctx.w.bulk("functions.caches");
  ctx.w.integer(0);
  const size_t overhead = startup + m.clients;
  ctx.w.bulk("overhead.total");
  ctx.w.integer(static_cast<int64_t>(overhead));
  ctx.w.bulk("keys.count");
  ctx.w.integer(static_cast<int64_t>(keys));
  ctx.w.bulk("keys.bytes-per-key");
  ctx.w.integer(keys ? static_cast<int64_t>((m.used - startup) / keys) : 0);
  ctx.w.bulk("dataset.bytes");
  ctx.w.integer(static_cast<int64_t>(m.used - overhead));
  ctx.w.bulk("dataset.percentage");
  ctx.w.dbl(m.used > startup ? 100.0 * static_cast<double>(m.used - overhead) /
                                   static_cast<double>(m.used - startup)
                             : 0);
  ctx.w.bulk("peak.percentage");
  ctx.w.dbl(m.peak ? 100.0 * static_cast<double>(m.used) / static_cast<double>(m.peak) : 0);
  ctx.w.bulk("allocator.allocated");
  ctx.w.integer(static_cast<int64_t>(store::PageHeap::instance().pages_in_use_bytes()));
  ctx.w.bulk("allocator.resident");
  ctx.w.integer(static_cast<int64_t>(store::PageHeap::instance().resident_bytes()));
  ctx.w.bulk("fragmentation");
  ctx.w.dbl(m.used ? static_cast<double>(m.rss) / static_cast<double>(m.used) : 0);
  ctx.w.bulk("fragmentation.bytes");
  ctx.w.integer(static_cast<int64_t>(m.rss) - static_cast<int64_t>(m.used));
}

void cmd_memory_doctor(CommandContext& ctx) {
  // Redis's getMemoryDoctorReport, for the conditions ringkv can measure.
  MemoryFigures m = memory_figures(ctx.server);
  bool empty = false, high_peak = false, high_frag = false, big_client_buf = false;
  int reports = 0;
  if (m.used < 5 * 1024 * 1024) {
    empty = true;
    ++reports;
  } else {
    if (static_cast<double>(m.peak) / static_cast<double>(m.used) > 1.5) {
      high_peak = true;
      ++reports;
    }
    double frag = static_cast<double>(m.rss) / static_cast<double>(m.used);
    if (frag > 1.4 && m.rss > m.used && m.rss - m.used > (10u << 20)) {
      high_frag = true;
      ++reports;
    }
    size_t clients = std::max<size_t>(1, ctx.server.connected_clients());
    if (m.clients / clients > 1024 * 200) {
      big_client_buf = true;
      ++reports;
    }
  }
  std::string s;
  if (reports == 0) {
    s = "Hi Sam, I can't find any memory issue in your instance. I can only account for what "
        "occurs on this base.\n";
  } else if (empty) {
    s = "Hi Sam, this instance is empty or is using very little memory, my issues detector can't "
        "be used in these conditions. Please, leave for your mission on Earth and fill it with "
        "some data. The new Sam and I will be back to our programming as soon as I finished "
        "rebooting.\n";
  } else {
    s = "Sam, I detected a few issues in this Redis instance memory implants:\n\n";
    if (high_peak) {
      s += " * Peak memory: In the past this instance used more than 150% the memory that is "
           "currently using. The allocator is normally not able to release memory after a peak, "
           "so you can expect to see a big fragmentation ratio, however this is actually "
           "harmless and is only due to the memory peak, and if the Redis instance Resident Set "
           "Size (RSS) is currently bigger than expected, the memory will be used as soon as you "
           "fill the Redis instance with more data. If the memory peak was only occasional and "
           "you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the "
           "only other option is to shutdown and restart the instance.\n\n";
    }
    if (high_frag) {
      s += " * High total RSS: This instance has a memory fragmentation and RSS overhead greater "
           "than 1.4 (this means that the Resident Set Size of the Redis process is much larger "
           "than the sum of the logical allocations Redis performed). This problem is usually due "
           "either to a large peak memory (check if there is a peak memory entry above in the "
           "report) or may result from a workload that causes the allocator to fragment memory a "
           "lot. If the problem is a large peak memory, then there is no issue. Otherwise, make "
           "sure you are using the Jemalloc allocator and not the default libc malloc. Note: The "
           "currently used allocator is \"ringkv-arena\".\n\n";
    }
    if (big_client_buf) {
      s += " * Big client buffers: The clients output buffers in this instance are greater than "
           "200K per client (on average). This may result from different causes, like Pub/Sub "
           "clients subscribed to channels bot not receiving data fast enough, so that data piles "
           "on the Redis instance output buffer, or clients sending commands with large replies "
           "or very large sequences of commands in the same pipeline. Please use the CLIENT LIST "
           "command in order to investigate the issue if it causes problems in your instance, or "
           "to understand better why certain clients are using a big amount of memory.\n\n";
    }
    s += "I'm here to keep you safe, Sam. I want to help you.\n";
  }
  ctx.w.verbatim(s);
}

void cmd_memory_malloc_stats(CommandContext& ctx) {
  // Redis prints its allocator's statistics here; ringkv's entries live in its own arena.
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "ringkv-arena: %zu bytes in pages handed out, %zu bytes resident (8 KiB pages, "
                "size classes 8 bytes apart up to %zu bytes; larger blocks from malloc)\n",
                store::PageHeap::instance().pages_in_use_bytes(),
                store::PageHeap::instance().resident_bytes(), store::kMaxSmall);
  ctx.w.verbatim(buf);
}

void cmd_memory_purge(CommandContext& ctx) {
  // Free pages already go back to the kernel beyond a small cache (PageHeap); nothing to force.
  ctx.w.ok();
}

void cmd_memory_help(CommandContext& ctx) {
  static const char* kHelp[] = {
      "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "DOCTOR",
      "    Return memory problems reports.",
      "MALLOC-STATS",
      "    Return internal statistics report from the memory allocator.",
      "PURGE",
      "    Attempt to purge dirty pages for reclamation by the allocator.",
      "STATS",
      "    Return information about the memory usage of the server.",
      "USAGE <key> [SAMPLES <count>]",
      "    Return memory in bytes used by <key> and its value. Nested values are",
      "    sampled up to <count> times (default: 5, 0 means sample all).",
      "HELP",
      "    Prints this help.",
  };
  ctx.w.array(std::size(kHelp));
  for (const char* l : kHelp) ctx.w.simple(l);
}

}  // namespace ringkv::server
