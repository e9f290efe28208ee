# The library: every source under src/ except the command line and the test oracle,
# compiled once (position-independent) and archived twice, as libresnet.a (target
# resnet_lib, which the CLI, tests and benchmarks link) and libresnet.so (resnet_shared).
# Adding a layer means adding files, not editing this list.
#
# No public header includes a dependency's header, so every dependency is PRIVATE:
# consumers compile without -fopenmp or nlohmann_json. The static archive still needs the
# dependencies' libraries at link time; CMake exports them as $<LINK_ONLY:...> and the
# package's config finds them (cmake/resnetConfig.cmake.in).

file(GLOB_RECURSE RESNET_LIB_SOURCES CONFIGURE_DEPENDS src/*.cpp)
# The command line and the inference server it runs (src/serve/, on cpp-httplib) are
# programs over the library, not part of it.
# src/mpi/ (the MPI communicator) is the command line's too, so that the library does not
# depend on MPI.
list(FILTER RESNET_LIB_SOURCES EXCLUDE REGEX "/src/cli/|/src/serve/|/src/mpi/")

# The test oracle: naive reference kernels and the reference interpreter of inference
# graphs. Tests link it; the installed library does not contain it.
set(RESNET_ORACLE_SOURCES ${RESNET_LIB_SOURCES})
list(FILTER RESNET_ORACLE_SOURCES INCLUDE REGEX "/src/ref/|/src/infer/reference_run\\.cpp$")
list(FILTER RESNET_LIB_SOURCES EXCLUDE REGEX "/src/ref/|/src/infer/reference_run\\.cpp$")

set(RESNET_INCLUDE_DIR ${CMAKE_CURRENT_SOURCE_DIR}/include)

add_library(resnet_objects OBJECT ${RESNET_LIB_SOURCES})
set_source_files_properties(src/api/version.cpp PROPERTIES
                            COMPILE_DEFINITIONS RESNET_VERSION="${PROJECT_VERSION}")
# Inline member functions are compiled into every program that calls them; the
# library's copies need not be exported (cmake/resnet.map does the rest).
set_target_properties(resnet_objects PROPERTIES POSITION_INDEPENDENT_CODE ON
                      VISIBILITY_INLINES_HIDDEN ON)
target_include_directories(resnet_objects PUBLIC $<BUILD_INTERFACE:${RESNET_INCLUDE_DIR}>)
target_compile_features(resnet_objects PUBLIC cxx_std_20)
target_link_libraries(resnet_objects PRIVATE DNNL::dnnl nlohmann_json::nlohmann_json
                      OpenMP::OpenMP_CXX ZLIB::ZLIB PNG::PNG JPEG::JPEG onnx_proto
                      OpenSSL::Crypto)

add_library(resnet_lib STATIC $<TARGET_OBJECTS:resnet_objects>)
add_library(resnet_shared SHARED $<TARGET_OBJECTS:resnet_objects>)
foreach(lib resnet_lib resnet_shared)
  target_include_directories(${lib} PUBLIC $<BUILD_INTERFACE:${RESNET_INCLUDE_DIR}>
                             $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_compile_features(${lib} PUBLIC cxx_std_20)
  target_link_libraries(${lib} PRIVATE DNNL::dnnl OpenMP::OpenMP_CXX ZLIB::ZLIB PNG::PNG
                        JPEG::JPEG onnx_proto OpenSSL::Crypto)
  set_target_properties(${lib} PROPERTIES OUTPUT_NAME resnet)
endforeach()
# libresnet.so exports the resnet:: namespace only (cmake/resnet.map), not the oneDNN,
# JSON, protobuf and standard-library template code compiled into it.
target_link_options(resnet_shared PRIVATE
                    "LINKER:--version-script=${CMAKE_CURRENT_SOURCE_DIR}/cmake/resnet.map")
set_property(TARGET resnet_shared APPEND PROPERTY
             LINK_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/cmake/resnet.map)
# The ABI of a 0.x release changes with its minor version.
set_target_properties(resnet_lib PROPERTIES EXPORT_NAME resnet_static)
set_target_properties(resnet_shared PROPERTIES EXPORT_NAME resnet_shared
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})

# The names a consumer of the installed package uses, also under add_subdirectory.
add_library(resnet::resnet ALIAS resnet_lib)
add_library(resnet::resnet_static ALIAS resnet_lib)
add_library(resnet::resnet_shared ALIAS resnet_shared)

add_library(resnet_oracle STATIC ${RESNET_ORACLE_SOURCES})
target_link_libraries(resnet_oracle PUBLIC resnet_lib)
