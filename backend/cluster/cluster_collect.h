#pragma once
// Bringing a cluster run home: finished gates into the expert library (one atomic write each) with their
// training runs, or the finished eval cells into ONE eval run of the workspace's database, the same rows a
// local `eval` writes. Idempotent: what was collected is recorded in the run folder (collected.json) and
// never collected twice; a run collected while tasks are still pending is collected as far as it goes.
#include <set>
#include <string>

#include "cluster/cluster_run.h"

namespace phatgoose {

struct CollectReport {
    int64_t collected = 0;    // tasks brought home by this call
    int64_t already = 0;      // brought home by an earlier call
    int64_t waiting = 0;      // pending or running
    int64_t failed = 0;       // failed or cancelled: nothing to bring home
    int64_t eval_run = 0;     // the database run of an eval collection
    std::string eval_status;  // its status after this call
};

CollectReport collectRun(const ClusterRun& run, const std::string& database, const std::string& version);

// The task indices earlier collectRun() calls brought home (the run folder's collected.json).
std::set<size_t> collectedTasks(const ClusterRun& run);

}  // namespace phatgoose
