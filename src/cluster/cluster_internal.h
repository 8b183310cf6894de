// Shared by the files that implement Cluster (cluster.cc, cluster_membership.cc,
// cluster_transfer.cc); not part of the module's interface.
#pragma once

#include "cluster/cluster.h"
#include "cluster/sync_client.h"

namespace ringkv::cluster {

// The blocking client of the control and transfer threads, one per node id (tests run several
// nodes in one process).
SyncClient& sync_client(const ClusterOptions& o);

}  // namespace ringkv::cluster
