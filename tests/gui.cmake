if(PHATGOOSE_BUILD_GUI)
    phatgoose_test(test_gui
        SOURCES test_gui.cpp fixtures/tiny_t5.cpp fixtures/random_experts.cpp
        LIBS phatgoose_ui phatgoose_backend
        LABELS unit gui)
endif()
