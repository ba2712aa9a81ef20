# Dependencies as DEPENDENCIES.md describes them (Debian 12 packages).
find_package(PkgConfig REQUIRED)

# mbedTLS 2.28 ships neither a .pc nor a CMake config.
find_path(MBEDTLS_INCLUDE_DIR mbedtls/version.h REQUIRED)
find_library(MBEDTLS_LIB mbedtls REQUIRED)
find_library(MBEDX509_LIB mbedx509 REQUIRED)
find_library(MBEDCRYPTO_LIB mbedcrypto REQUIRED)
add_library(pl_mbedtls INTERFACE)
target_include_directories(pl_mbedtls SYSTEM INTERFACE ${MBEDTLS_INCLUDE_DIR})
target_link_libraries(pl_mbedtls INTERFACE ${MBEDTLS_LIB} ${MBEDX509_LIB} ${MBEDCRYPTO_LIB})

pkg_check_modules(CRITERION REQUIRED IMPORTED_TARGET criterion)
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(ZMQ IMPORTED_TARGET libzmq)
pkg_check_modules(COAP IMPORTED_TARGET libcoap-3-gnutls)
pkg_check_modules(SERIALPORT IMPORTED_TARGET libserialport)
pkg_check_modules(PQ IMPORTED_TARGET libpq)
find_package(nanopb CONFIG QUIET)
find_program(NANOPB_GEN nanopb_generator.py)
find_program(OPENSSL_EXE openssl)
