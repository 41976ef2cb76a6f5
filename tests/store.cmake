# The results database (QtSql only) and workspaces.
phatgoose_test(test_store SOURCES test_store.cpp LIBS phatgoose_store LABELS unit)
phatgoose_test(test_workspace SOURCES test_workspace.cpp LIBS phatgoose_test_fixtures LABELS unit)
