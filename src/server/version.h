// Version strings.
#pragma once

namespace ringkv::server {

inline constexpr const char* kRingkvVersion = "0.1.0";
// The Redis version whose behaviour ringkv reproduces; reported where clients look for a Redis
// version (HELLO, INFO redis_version) so that they enable the features we implement.
inline constexpr const char* kRedisCompatVersion = "7.0.15";

}  // namespace ringkv::server
