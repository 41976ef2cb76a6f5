# The workbench's views with real widgets, offscreen.
if(PHATGOOSE_BUILD_GUI)
    # The probe view's heatmap against the backend's trace.
    phatgoose_test(test_gui SOURCES test_gui.cpp LIBS phatgoose_ui phatgoose_test_fixtures LABELS unit gui)
    # The Results view: stored runs, chart, drill-down, evaluations from the view, exports.
    phatgoose_test(test_gui_results SOURCES test_gui_results.cpp LIBS phatgoose_ui phatgoose_test_fixtures
                   LABELS unit gui)
    # The probing views: heatmap modes, gate scores, token selection, the Compare view, exports.
    phatgoose_test(test_gui_probe SOURCES test_gui_probe.cpp LIBS phatgoose_ui phatgoose_test_fixtures
                   LABELS unit gui)
    # The Routing analysis tab: new analyses from the tab, stored = backend, cells, profiles, similarity, CSV.
    phatgoose_test(test_gui_analysis SOURCES test_gui_analysis.cpp LIBS phatgoose_ui phatgoose_test_fixtures
                   LABELS unit gui)
    # The views at the paper's library size (166 generated experts): readable heatmap, scores, legends, table.
    phatgoose_test(test_gui_scale SOURCES test_gui_scale.cpp LIBS phatgoose_ui phatgoose_test_fixtures
                   LABELS unit gui)
    # The shell: workspaces, recent list, the Experts view, gate training from its dialog, cancellation.
    phatgoose_test(test_gui_training SOURCES test_gui_training.cpp LIBS phatgoose_ui phatgoose_test_fixtures
                   phatgoose_cli LABELS unit gui)
endif()
