#include "experts/expert_data.h"

namespace phatgoose {
namespace fs = std::filesystem;

std::optional<fs::path> recordedTrainingData(const LoraExpert& expert, const fs::path& workspace_root) {
    if (!expert.training_record || expert.training_record->dataset.empty()) return std::nullopt;
    const fs::path recorded(expert.training_record->dataset);
    auto exists = [](const fs::path& p) {
        std::error_code ec;
        return fs::is_regular_file(p, ec);
    };
    if (exists(recorded)) return recorded;
    if (recorded.is_absolute()) return std::nullopt;
    if (exists(expert.dir / recorded)) return expert.dir / recorded;
    if (!workspace_root.empty() && exists(workspace_root / recorded)) return workspace_root / recorded;
    return std::nullopt;
}

}  // namespace phatgoose
