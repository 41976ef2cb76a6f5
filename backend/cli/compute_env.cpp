// The BLAS behind LibTorch: Debian's LibTorch calls whatever libblas.so.3 the alternatives
// system points at, and the reference BLAS is 30x slower than OpenBLAS on this machine (docs/ARCHITECTURE.md,
// "Machine facts").
#include <dlfcn.h>
#include <link.h>

#include <filesystem>

#include "cli/command.h"

namespace phatgoose {

QCommandLineOption threadsOption() {
    return {"threads", "Compute threads for BLAS products and the engine's kernels (0 = every core).", "N",
            "0"};
}

std::string blasDescription() {
    using GetConfig = char* (*)();
    if (auto config = reinterpret_cast<GetConfig>(dlsym(RTLD_DEFAULT, "openblas_get_config")))
        return config();  // "OpenBLAS 0.3.21 DYNAMIC_ARCH ..."
    std::string found = "unknown";
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* data) {
            std::string name = info->dlpi_name ? info->dlpi_name : "";
            if (name.find("libblas") != std::string::npos || name.find("libmkl") != std::string::npos) {
                std::error_code ec;
                auto real = std::filesystem::canonical(name, ec);
                *static_cast<std::string*>(data) = ec ? name : real.string();
                return 1;
            }
            return 0;
        },
        &found);
    return found == "unknown" ? found : "reference or other BLAS: " + found;
}

}  // namespace phatgoose
