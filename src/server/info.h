// INFO: the text of each section, from the server's live state.
#pragma once

#include <string>
#include <vector>

namespace ringkv::server {

class Server;

// `sections` lowercase; empty means "default". Unknown sections are ignored, as in Redis.
std::string build_info(Server& server, const std::vector<std::string>& sections);

// Resident set size of this process in bytes.
size_t process_rss_bytes();

}  // namespace ringkv::server
