# libFuzzer targets. The project builds with g++, which has no libFuzzer, so the fuzzers are compiled by a
# direct clang++ call from their sources (the parser needs only the standard library, nlohmann json and
# the atomic writer that safetensors.cpp links against).
find_program(PHATGOOSE_CLANGXX NAMES clang++ clang++-14)
if(NOT PHATGOOSE_CLANGXX)
    message(FATAL_ERROR "PHATGOOSE_BUILD_FUZZ is ON but clang++ was not found. Install the Debian packages "
                        "'clang' and 'libclang-rt-14-dev', or configure with -DPHATGOOSE_BUILD_FUZZ=OFF.")
endif()

set(PHATGOOSE_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=c++20 -O1 -g)

# A missing runtime only shows when linking, so link a trivial fuzzer now rather than fail mid-build.
if(NOT PHATGOOSE_FUZZ_RUNTIME_CHECKED STREQUAL PHATGOOSE_CLANGXX)
    set(probe_source ${CMAKE_CURRENT_BINARY_DIR}/fuzz/probe.cpp)
    file(WRITE ${probe_source}
         "#include <cstddef>\n#include <cstdint>\n"
         "extern \"C\" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n")
    execute_process(
        COMMAND ${PHATGOOSE_CLANGXX} ${PHATGOOSE_FUZZ_FLAGS} ${probe_source} -o ${CMAKE_CURRENT_BINARY_DIR}/fuzz/probe
        RESULT_VARIABLE probe_result OUTPUT_VARIABLE probe_output ERROR_VARIABLE probe_output)
    if(NOT probe_result EQUAL 0)
        message(FATAL_ERROR "PHATGOOSE_BUILD_FUZZ is ON but ${PHATGOOSE_CLANGXX} cannot link a libFuzzer "
                            "program with ASan and UBSan. Install the Debian packages 'clang' and "
                            "'libclang-rt-14-dev', or configure with -DPHATGOOSE_BUILD_FUZZ=OFF.\n${probe_output}")
    endif()
    set(PHATGOOSE_FUZZ_RUNTIME_CHECKED ${PHATGOOSE_CLANGXX} CACHE INTERNAL "The clang++ known to link libFuzzer programs")
endif()

set(fuzz_dir ${CMAKE_CURRENT_LIST_DIR})
set(backend_dir ${PROJECT_SOURCE_DIR}/backend)
set(fuzz_out ${CMAKE_CURRENT_BINARY_DIR}/fuzz)
set(fuzz_binary ${fuzz_out}/fuzz_safetensors_header)
# System folders stay implicit: an explicit -I/usr/include breaks libstdc++'s #include_next.
get_target_property(json_include_dirs nlohmann_json::nlohmann_json INTERFACE_INCLUDE_DIRECTORIES)
set(fuzz_include_flags -I${backend_dir})
foreach(dir IN LISTS json_include_dirs)
    if(NOT dir MATCHES "^/usr(/local)?/include/?$")
        list(APPEND fuzz_include_flags -I${dir})
    endif()
endforeach()
set(fuzz_sources ${fuzz_dir}/fuzz_safetensors_header.cpp ${backend_dir}/model/safetensors.cpp
                 ${backend_dir}/atomic_file.cpp)

add_custom_command(
    OUTPUT ${fuzz_binary}
    COMMAND ${PHATGOOSE_CLANGXX} ${PHATGOOSE_FUZZ_FLAGS}
            ${fuzz_include_flags} ${fuzz_sources} -o ${fuzz_binary}
    DEPENDS ${fuzz_sources} ${backend_dir}/model/safetensors.h ${backend_dir}/error.h ${backend_dir}/atomic_file.h
    COMMENT "Building the libFuzzer target fuzz_safetensors_header with clang++"
    VERBATIM)
add_custom_target(fuzz_safetensors_header ALL DEPENDS ${fuzz_binary})

# The fuzzer adds what it finds to its corpus folder, so it runs on a copy in the build tree and the
# seeds in the source tree stay as committed. Crashing inputs land in fuzz/artifacts/.
add_test(NAME fuzz_safetensors_header_corpus
         COMMAND ${CMAKE_COMMAND} -E copy_directory ${fuzz_dir}/corpus ${fuzz_out}/corpus)
set_tests_properties(fuzz_safetensors_header_corpus PROPERTIES
    LABELS fuzz FIXTURES_SETUP fuzz_safetensors_header_corpus)
file(MAKE_DIRECTORY ${fuzz_out}/artifacts)
add_test(NAME fuzz_safetensors_header
         COMMAND ${fuzz_binary} -max_total_time=60 -rss_limit_mb=2048 -timeout=10 -max_len=8192
                 -dict=${fuzz_dir}/safetensors.dict -artifact_prefix=${fuzz_out}/artifacts/ ${fuzz_out}/corpus
         WORKING_DIRECTORY ${fuzz_out})
set_tests_properties(fuzz_safetensors_header PROPERTIES
    LABELS fuzz TIMEOUT 240 FIXTURES_REQUIRED fuzz_safetensors_header_corpus)
