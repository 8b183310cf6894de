// The embedded configuration service (LocalConfigService): compare-and-set on the epoch, and what
// it accepts after its node restarted without ring-state-file while other nodes run a newer epoch.
#include "cluster/config_service.h"

#include <catch2/catch.hpp>

using namespace ringkv;
using namespace ringkv::cluster;

namespace {

RingConfig doc(uint64_t epoch, std::vector<std::string> ids) {
  RingConfig c;
  c.epoch = epoch;
  uint32_t ordinal = 1;
  for (auto& id : ids)
    c.servers.push_back(ServerInfo{id, "127.0.0.1:1", 1, ServerState::kUp, ordinal++});
  c.next_ordinal = ordinal;
  return c;
}

NodeStatus status(const std::string& id, uint64_t applied) {
  NodeStatus s;
  s.id = id;
  s.applied_epoch = applied;
  return s;
}

}  // namespace

TEST_CASE("compare-and-set on the epoch") {
  LocalConfigService svc;
  REQUIRE(svc.store(0, doc(1, {"n1"})));
  Status st = svc.store(0, doc(2, {"n1", "n2"}));
  CHECK(st.code() == Code::kFailedPrecondition);
  CHECK(st.message() == "the ring configuration changed (epoch 1, expected 0)");
  // Nodes that run the document's epoch (or an older one) change nothing.
  REQUIRE(svc.report(status("n1", 1)));
  REQUIRE(svc.report(status("n2", 0)));
  svc.note_epoch(1, "n3");
  REQUIRE(svc.store(1, doc(2, {"n1", "n2"})));
  CHECK(svc.load()->epoch == 2);
}

TEST_CASE("a lost document takes back only the newest epoch a node runs") {
  for (bool by_report : {true, false}) {
    DYNAMIC_SECTION((by_report ? "learnt from a status report" : "learnt from a long poll")) {
      // The host restarted without its state: its own one-server ring at epoch 1, while n2
      // runs epoch 5.
      LocalConfigService svc;
      REQUIRE(svc.store(0, doc(1, {"n1"})));
      if (by_report)
        REQUIRE(svc.report(status("n2", 5)));
      else
        svc.note_epoch(5, "n2");
      // A change of the restarted ring would split the ring for good: refused, saying why.
      Status st = svc.store(1, doc(2, {"n1", "n4"}));
      CHECK(st.code() == Code::kRefused);
      CHECK(st.message() ==
            "the ring configuration hosted here was lost (its node restarted without "
            "ring-state-file): it is at epoch 1, but node 'n2' runs epoch 5. The other nodes "
            "write their configuration back; retry when RING INFO here shows ring_epoch 5");
      // An older ring than n2's (a node that lagged behind) does not come back either.
      CHECK(svc.store(1, doc(4, {"n1", "n2", "n3"})).code() == Code::kRefused);
      CHECK(svc.load()->epoch == 1);
      // n2's does; after it, changes go on as usual.
      REQUIRE(svc.store(1, doc(5, {"n1", "n2", "n3"})));
      CHECK(svc.load()->epoch == 5);
      CHECK(svc.load()->servers.size() == 3);
      REQUIRE(svc.store(5, doc(6, {"n1", "n2"})));
      CHECK(svc.load()->epoch == 6);
    }
  }
}
