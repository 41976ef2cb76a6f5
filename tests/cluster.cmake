# Cluster runs against a real one-node Slurm that the suite starts itself (tests/slurm_cluster.sh; root and
# Debian's slurmctld, slurmd, slurm-client and munge, which packaging/bootstrap.sh installs).
phatgoose_test(test_cluster SOURCES test_cluster.cpp LIBS phatgoose_cli phatgoose_test_fixtures LABELS cluster
               TIMEOUT 900)
target_compile_definitions(test_cluster PRIVATE PHATGOOSE_SLURM_SCRIPT="${CMAKE_CURRENT_SOURCE_DIR}/slurm_cluster.sh")
# The workbench's side: Train gates on Slurm and the Jobs tab, offscreen.
if(PHATGOOSE_BUILD_GUI)
    phatgoose_test(test_gui_jobs SOURCES test_gui_jobs.cpp LIBS phatgoose_ui phatgoose_test_fixtures
                   LABELS cluster gui TIMEOUT 900)
    target_compile_definitions(test_gui_jobs
                               PRIVATE PHATGOOSE_SLURM_SCRIPT="${CMAKE_CURRENT_SOURCE_DIR}/slurm_cluster.sh")
endif()
# Each suite starts its own cluster on the same ports: never two at once under `ctest -j`.
set_tests_properties(test_cluster PROPERTIES RESOURCE_LOCK slurm)
if(PHATGOOSE_BUILD_GUI)
    set_tests_properties(test_gui_jobs PROPERTIES RESOURCE_LOCK slurm)
endif()
