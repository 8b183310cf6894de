// Shared by the files that implement Cluster (cluster.cc, cluster_membership.cc,
// cluster_transfer.cc); not part of the module's interface.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cluster/cluster.h"
#include "cluster/sync_client.h"

namespace ringkv::cluster {

// Whether every server of `ids` other than `self` that `live` calls up has reported, within the
// last 5 s, that it routes with `epoch` or a newer one.
bool all_route_with(const std::vector<std::string>& ids, const std::string& self,
                    const std::vector<NodeStatus>& statuses, uint64_t epoch, Millis now,
                    const std::function<bool(const std::string&)>& live);

}  // namespace ringkv::cluster
