# evograd — build, test, bench, demo, install.
#
#   make            build/evogradd (CUDA backend when nvcc is found)
#   make CUDA=0     CPU-only build, works with no CUDA on the machine
#   make SAN=1      ASan + UBSan build under build/san
#   make test       install dependencies, build, run every test
#   make bench      CPU benchmarks against PyTorch, printed as ratios
#   make deps       install the Debian packages the project needs
#   make gpu-bundle build plus BUILD/gpu-libs.tar.xz for tests/gpu/run.sh
#   make demo       start a daemon, run the rotation example through it
#   make fuzz       run each libFuzzer harness (tests/fuzz) FUZZ_SECONDS (300) s
#   make soak       the load, storm and fault-injection tests, EG_SOAK (10) times longer
#   make mutate     break the source in small ways and show the tests catch each
#   make replay     replay a rotation run in float64 PyTorch, step by step
#   make install    PREFIX=/usr/local DESTDIR= (binaries in PREFIX/bin, the
#                   systemd unit in UNITDIR, the example config in /etc/evograd)

PREFIX  ?= /usr/local
DESTDIR ?=
UNITDIR ?= $(PREFIX)/lib/systemd/system
SAN     ?= 0
FUZZ    ?= 0
NVCC    ?= $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
CUDA    ?= $(if $(NVCC),1,0)

BUILD := build$(if $(filter 1,$(SAN)),/san,)
OPENMP := -fopenmp

# FUZZ=1: the library and the libFuzzer harnesses (tests/fuzz) built by
# clang under ASan + UBSan in build/fuzz, CPU only, single-threaded.
ifeq ($(FUZZ),1)
override CC   := clang
override CXX  := clang++
override CUDA := 0
BUILD  := build/fuzz
OPENMP :=
endif

CC      ?= gcc
CXX     ?= g++
WARN    := -Wall -Wextra -Wshadow -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPENMP) -fno-math-errno $(WARN) -MMD -MP -Idaemon \
           $(shell PKG_CONFIG_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp/pkgconfig pkg-config --cflags openblas 2>/dev/null)
LDLIBS  := -ldnnl $(shell PKG_CONFIG_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp/pkgconfig pkg-config --libs openblas 2>/dev/null || echo -lopenblas) \
           -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-openmp -ljansson -lz -lm -lpthread
LDLIBS  += -lsqlite3 -lpq -ljpeg -lpng -lsentencepiece -lstdc++
CFLAGS  += -I$(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
LDLIBS  += -lmicrohttpd -lsystemd
LDFLAGS += $(OPENMP)
# The one C++ file: the shim over SentencePiece's C++ API (data/tokenizer_spm.cc).
CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++17 -D_GNU_SOURCE $(WARN) -MMD -MP -Idaemon

ifeq ($(FUZZ),1)
CFLAGS  += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined -Wno-unknown-pragmas
CXXFLAGS += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined -fno-sanitize=vptr # (vptr needs the C++ runtime the C linker leaves out)
LDFLAGS += -fsanitize=fuzzer,address,undefined
LDLIBS  += -lgomp
endif

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
CXXFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

# The CUDA backend's sources (daemon/nn/cuda/*.cu) are built when nvcc is
# found and CUDA is not 0; with no sources there is nothing to link.
ifeq ($(CUDA),1)
CU_SRC     := $(wildcard daemon/nn/cuda/*.cu)
endif
ifneq ($(CU_SRC),)
CUDA_HOME  ?= $(patsubst %/bin/nvcc,%,$(NVCC))
NVCCFLAGS  ?= -O2 -g -std=c++17 -gencode arch=compute_90,code=sm_90 \
              -gencode arch=compute_90,code=compute_90
NVCCFLAGS  += -Idaemon -Xcompiler -Wall
CFLAGS     += -DEG_HAVE_CUDA -I$(CUDA_HOME)/include
LDLIBS     += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudnn -lcublas -lcudart -lstdc++
endif

# The engine and everything the daemon runs, as one static library.
LIB_DIRS := daemon/util daemon/nn daemon/nn/cpu daemon/data daemon/meta daemon/tasks daemon/sched daemon/store \
            daemon/store/sqlite daemon/store/postgres
LIB_DIRS += daemon/api
LIB_SRC  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
LIB_CXX  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.cc))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(LIB_CXX:%.cc=$(BUILD)/obj/%.o) $(CU_SRC:%.cu=$(BUILD)/obj/%.o)
LIB_OBJ  += $(BUILD)/obj/gen/migrations_sqlite.o $(BUILD)/obj/gen/migrations_pg.o $(BUILD)/obj/gen/ui_assets.o
LIB      := $(BUILD)/libevograd.a

DAEMON_SRC := $(wildcard daemon/*.c)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/obj/%.o)

TEST_SRC  := $(wildcard tests/unit/test_*.c)
TEST_BIN  := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TEST_UTIL := $(BUILD)/obj/tests/unit/testutil.o $(BUILD)/obj/tests/unit/naive_evograd.o \
             $(BUILD)/obj/tests/unit/task_checks.o \
             $(BUILD)/obj/tests/unit/pg_cluster.o \
             $(BUILD)/obj/tests/unit/synth_data.o $(BUILD)/obj/tests/unit/trace.o
BENCH_BIN := $(BUILD)/bench_cpu $(BUILD)/bench_meta $(BUILD)/bench_api $(BUILD)/bench_store \
             $(BUILD)/bench_lft $(BUILD)/bench_encoder $(BUILD)/bench_metaxl \
             $(BUILD)/trace_run

# The libFuzzer harnesses (FUZZ=1 builds only; tests/fuzz/run.sh runs them).
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(BUILD)/%,$(filter-out tests/fuzz/fuzz_file.c,$(wildcard tests/fuzz/fuzz_*.c)))

# evogradctl, the command-line client; test_client links its modules.
CLIENT_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard client/*.c))
CLIENT_MOD := $(filter-out $(BUILD)/obj/client/evogradctl.o,$(CLIENT_OBJ))

.PHONY: all test unit bench deps install clean demo gpu-bundle mutate replay fuzz fuzzers soak FORCE
all: $(BUILD)/evogradd $(BUILD)/evogradctl $(TEST_BIN) $(BENCH_BIN) $(BUILD)/tests/libegfault.so

# Objects depend on the flags they were built with (CUDA on or off
# included), so switching them in one build folder rebuilds it.
$(BUILD)/flags: FORCE
	@mkdir -p $(dir $@)
	@echo '$(CFLAGS) | $(CXXFLAGS) | $(NVCCFLAGS) | $(CU_SRC)' | cmp -s - $@ || echo '$(CFLAGS) | $(CXXFLAGS) | $(NVCCFLAGS) | $(CU_SRC)' > $@

$(BUILD)/obj/%.o: %.c $(BUILD)/flags
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.cc $(BUILD)/flags
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.cu $(BUILD)/flags
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

# The migrations of the SQLite store (sql/NNN_*.sql) and of the PostgreSQL
# store (sql/postgres/NNN_*.sql), embedded as string literals.
$(BUILD)/gen/migrations_sqlite.c: sql/embed.sh $(wildcard sql/[0-9]*.sql)
	@mkdir -p $(dir $@)
	sh sql/embed.sh sqlite $(wildcard sql/[0-9]*.sql) > $@.tmp && mv $@.tmp $@
$(BUILD)/gen/migrations_pg.c: sql/embed.sh $(wildcard sql/postgres/[0-9]*.sql)
	@mkdir -p $(dir $@)
	sh sql/embed.sh pg $(wildcard sql/postgres/[0-9]*.sql) > $@.tmp && mv $@.tmp $@

# The web page (daemon/ui), its chart library (npm uplot) and the example
# specs, embedded as byte arrays.
UPLOT := daemon/ui/node_modules/uplot/dist
UI_FILES := /=text/html=daemon/ui/index.html \
            /ui/app.js=text/javascript=daemon/ui/app.js \
            /ui/style.css=text/css=daemon/ui/style.css \
            /ui/uplot.js=text/javascript=$(UPLOT)/uPlot.iife.min.js \
            /ui/uplot.css=text/css=$(UPLOT)/uPlot.min.css \
            /ui/examples.json=application/json=$(BUILD)/gen/examples.json
$(UPLOT)/uPlot.iife.min.js $(UPLOT)/uPlot.min.css: daemon/ui/package.json daemon/ui/package-lock.json
	cd daemon/ui && npm ci --no-audit --no-fund && cp package-lock.json node_modules/.evograd-lock.json
	touch $(UPLOT)/uPlot.iife.min.js $(UPLOT)/uPlot.min.css

$(BUILD)/gen/examples.json: $(wildcard schema/examples/*.json)
	@mkdir -p $(dir $@)
	{ printf '{'; sep=''; for f in $^; do n=$$(basename $$f .json); printf '%s"%s":' "$$sep" "$$n"; cat $$f; sep=','; done; printf '}\n'; } > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/ui_assets.c: daemon/ui/embed.sh $(foreach f,$(UI_FILES),$(lastword $(subst =, ,$(f))))
	@mkdir -p $(dir $@)
	sh daemon/ui/embed.sh $(UI_FILES) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/ui_assets.o: $(BUILD)/gen/ui_assets.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/gen/migrations_%.o: $(BUILD)/gen/migrations_%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ) $(BUILD)/flags
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $(filter %.o,$^)

$(BUILD)/evogradd: $(DAEMON_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TEST_UTIL) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lcmocka

$(BUILD)/bench_cpu: $(BUILD)/obj/tests/bench/bench_cpu.o $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/bench_store: $(BUILD)/obj/tests/bench/bench_store.o $(BUILD)/obj/tests/unit/pg_cluster.o \
                     $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/bench_meta: $(BUILD)/obj/tests/bench/bench_meta.o $(BUILD)/obj/tests/unit/naive_evograd.o \
                    $(BUILD)/obj/tests/unit/synth_data.o $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/bench_lft: $(BUILD)/obj/tests/bench/bench_lft.o $(BUILD)/obj/tests/unit/synth_data.o $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/bench_encoder: $(BUILD)/obj/tests/bench/bench_encoder.o $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/bench_metaxl: $(BUILD)/obj/tests/bench/bench_metaxl.o $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/obj/tests/fuzz/fuzz_file.o $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

fuzzers:
	$(MAKE) FUZZ=1 $(patsubst tests/fuzz/%.c,build/fuzz/%,$(filter-out tests/fuzz/fuzz_file.c,$(wildcard tests/fuzz/fuzz_*.c)))

# Fuzzes each harness for FUZZ_SECONDS (default 300) seconds.
FUZZ_SECONDS ?= 300
fuzz: deps fuzzers
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh build/fuzz

# Traces a run for tests/parity/replay_rotation.py (make replay).
$(BUILD)/trace_run: $(BUILD)/obj/tests/unit/trace_run.o $(BUILD)/obj/tests/unit/trace.o $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/evogradctl: $(CLIENT_OBJ) $(BUILD)/obj/daemon/util/err.o
	$(CC) $(LDFLAGS) $^ -o $@ -lcurl -ljansson -lm

$(BUILD)/obj/tests/unit/test_client.o: CFLAGS += -Iclient
$(BUILD)/tests/test_client: $(BUILD)/obj/tests/unit/test_client.o $(CLIENT_MOD) $(TEST_UTIL) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lcurl -lcmocka

# The daemon's black-box tests and the API benchmark start BUILD/evogradd
# and speak HTTP to it (tests/unit/daemon_harness.c, libcurl).
DAEMON_HARNESS := $(BUILD)/obj/tests/unit/daemon_harness.o
$(BUILD)/tests/test_daemon_%: $(BUILD)/obj/tests/unit/test_daemon_%.o $(DAEMON_HARNESS) $(TEST_UTIL) $(LIB) | $(BUILD)/evogradd
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lcurl -lcmocka

# The fault-injection shim the inject tests preload into evogradd.
$(BUILD)/tests/libegfault.so: tests/fault/egfault.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g -Wall -Wextra -fPIC -shared $< -o $@ -ldl

$(BUILD)/bench_api: $(BUILD)/obj/tests/bench/bench_api.o $(DAEMON_HARNESS) \
                   $(BUILD)/obj/tests/unit/pg_cluster.o | $(BUILD)/evogradd
	$(CC) $(LDFLAGS) $^ -o $@ -lcurl -ljansson -lsqlite3 -lpq -lm -lpthread

# Unit tests (fast ones) run twice: plain and under ASan + UBSan. The
# slower parity and training tests run once, in the plain build.
test: deps
	$(MAKE) all
	$(MAKE) SAN=1 all
	$(MAKE) fuzzers
	tests/run.sh

bench: deps all
	tests/bench/run.sh $(BUILD)
	$(BUILD)/bench_meta
	$(BUILD)/bench_api
	$(BUILD)/bench_store
	tests/bench/lft.sh $(BUILD)
	tests/bench/encoder.sh $(BUILD)
	tests/bench/metaxl.sh $(BUILD)

deps:
	@tests/deps.sh

# The load, crash-storm and fault tests at EG_SOAK (10) times their size,
# with an allocation failure at every point of a job's run.
EG_SOAK ?= 10
soak: deps all
	EG_SOAK=$(EG_SOAK) EG_INJECT_ALL=1 tests/run.sh 'load|storm|inject'

# Breaks the source in small ways, one at a time, and shows that the tests
# catch each (tests/mutate.sh); not part of make test.
mutate: deps
	tests/mutate.sh

# Replays the first REPLAY_STEPS steps of the rotation example (seed
# REPLAY_SEED, method REPLAY_METHOD) in float64 PyTorch, step by step, and
# compares EvoGrad's hypergradients with T1−T2's along the way.
REPLAY_STEPS  ?= 300
REPLAY_SEED   ?= 2
REPLAY_METHOD ?= evograd
REPLAY_DIR    ?= $(BUILD)/replay
replay: deps $(BUILD)/trace_run
	rm -rf $(REPLAY_DIR)
	$(BUILD)/trace_run schema/examples/rotation-evograd.json $(REPLAY_STEPS) $(REPLAY_DIR) \
	    seed=$(REPLAY_SEED) method=$(REPLAY_METHOD)
	/usr/bin/python3 tests/parity/replay_rotation.py $(REPLAY_DIR) --table --t1t2

# For tests/gpu/run.sh on a GPU machine: the build plus the shared
# libraries that machine may lack, packed into BUILD/gpu-libs.tar.xz.
gpu-bundle: all
	tests/gpu/bundle.sh $(BUILD)

demo: deps
	$(MAKE) all
	tests/demo.sh $(BUILD)

install: $(BUILD)/evogradd $(BUILD)/evogradctl
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/evogradd $(DESTDIR)$(PREFIX)/bin/
	install -m 755 $(BUILD)/evogradctl $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)/etc/evograd
	sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' systemd/evogradd.service > $(DESTDIR)$(UNITDIR)/evogradd.service
	chmod 644 $(DESTDIR)$(UNITDIR)/evogradd.service
	test -e $(DESTDIR)/etc/evograd/evogradd.conf || install -m 644 systemd/evogradd.conf $(DESTDIR)/etc/evograd/

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
