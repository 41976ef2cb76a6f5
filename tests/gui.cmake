if(PHATGOOSE_BUILD_GUI)
    phatgoose_test(test_gui
        SOURCES test_gui.cpp fixtures/tiny_t5.cpp fixtures/random_experts.cpp
        LIBS phatgoose_ui phatgoose_backend
        LABELS unit gui)
    # The Results view: stored runs, chart, drill-down, evaluations from the view, exports.
    phatgoose_test(test_gui_results
        SOURCES test_gui_results.cpp fixtures/tiny_t5.cpp fixtures/random_experts.cpp fixtures/tiny_workspace.cpp
        LIBS phatgoose_ui phatgoose_backend
        LABELS unit gui)
    # The probing views: heatmap modes, gate scores, token selection, the Compare view, exports.
    phatgoose_test(test_gui_probe
        SOURCES test_gui_probe.cpp fixtures/tiny_t5.cpp fixtures/random_experts.cpp fixtures/tiny_workspace.cpp
        LIBS phatgoose_ui phatgoose_backend
        LABELS unit gui)
    # The shell: workspaces, recent list, the Experts view, gate training from its dialog, cancellation.
    phatgoose_test(test_gui_training
        SOURCES test_gui_training.cpp fixtures/tiny_t5.cpp fixtures/random_experts.cpp fixtures/tiny_workspace.cpp
        LIBS phatgoose_ui phatgoose_backend
        LABELS unit gui)
endif()
