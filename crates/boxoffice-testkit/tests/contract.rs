//! The store contract suite on the backend chosen by `BOXOFFICE_TEST_DATABASE`.

boxoffice_store::store_contract_suite!(boxoffice_testkit::TestDb::new());
