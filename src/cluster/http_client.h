// A minimal blocking HTTP/1.1 client for etcd's JSON gateway: POST with a JSON body, read the
// whole response (Content-Length or chunked), or stream a chunked response line by line.
// Runs on the control thread only, never on an event loop.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "ringkv/status.h"

namespace ringkv::cluster {

// POSTs body to http://host:port/path; returns the response body of a 2xx reply.
Result<std::string> http_post(const std::string& host, int port, const std::string& path,
                              const std::string& body, int timeout_ms);

// POSTs body and calls on_chunk for every chunk of a chunked response until the server closes,
// on_chunk returns false, or *stop becomes true (checked at least every timeout_ms).
Status http_stream(const std::string& host, int port, const std::string& path,
                   const std::string& body, int timeout_ms, const std::atomic<bool>* stop,
                   const std::function<bool(const std::string&)>& on_chunk);

std::string base64_encode(std::string_view in);
bool base64_decode(std::string_view in, std::string* out);

}  // namespace ringkv::cluster
