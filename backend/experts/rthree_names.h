#pragma once
// The authors' names for the experts of their released libraries (r-three P3_Phatgoose: 36 experts;
// FLAN_Phatgoose and the "full" library: 166), in the index order of their checkpoints.
#include <string>
#include <vector>

namespace phatgoose {

const std::vector<std::string>& rthreeP3Names();    // 36
const std::vector<std::string>& rthreeFullNames();  // 166: P3, FLAN v2, NIv2, add-on

}  // namespace phatgoose
