// INFO: the text of each section, from the server's live state, with Redis 7.0's sections,
// fields and section selection; and the memory figures INFO and MEMORY share.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace ringkv::server {

class Server;

// `sections` as given (any case); empty means "default". Unknown sections are ignored, so
// INFO of only unknown sections is empty, as in Redis.
// `loop_index`: the event loop the caller runs on (the cluster section reads its view of the ring).
std::string build_info(Server& server, const std::vector<std::string>& sections, size_t loop_index);

// Resident set size of this process in bytes.
size_t process_rss_bytes();

struct MemoryFigures {
  size_t used;     // used_memory: the store's entries and tables, plus client output buffers
  size_t dataset;  // the store alone
  size_t clients;  // pending client output
  size_t peak;     // the highest `used` seen
  size_t rss;
};
MemoryFigures memory_figures(Server& server);
// Keeps used_memory_peak up to date (cheap; the server calls it on every cron tick).
void note_memory_peak(size_t used);

}  // namespace ringkv::server
