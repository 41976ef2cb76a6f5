# The Debian package built, installed on this machine with dpkg, run from /usr/bin and removed
# (packaging/test_package.sh). It needs root and fails, saying so, without it: `ctest -LE packaging`
# leaves it out. Alone, since it strips and compresses the programs and starts the workbench under Xvfb.
if(PHATGOOSE_BUILD_GUI)
    add_test(NAME packaging
             COMMAND bash ${PROJECT_SOURCE_DIR}/packaging/test_package.sh ${CMAKE_BINARY_DIR} ${PHATGOOSE_DEMO_DIR})
    set_tests_properties(packaging PROPERTIES LABELS packaging TIMEOUT 1800 RUN_SERIAL TRUE)
endif()
