# File formats and atomic writes (phatgoose_io): no LibTorch needed.
phatgoose_test(test_safetensors SOURCES test_safetensors.cpp LIBS phatgoose_io LABELS unit)

if(PHATGOOSE_BUILD_FUZZ)
    include(${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz.cmake)
endif()
