#define BOOST_TEST_MODULE convoy integration tests
#include <boost/test/unit_test.hpp>
