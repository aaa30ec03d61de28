"""wirescribe.cluster.plan: the deployment's numbers from the settings (no ray, no cluster)."""

from __future__ import annotations

from wirescribe.cluster.plan import ClusterPlan
from wirescribe.settings import Settings, SettingsError


def plan(**env: str) -> ClusterPlan:
    return ClusterPlan.from_settings(Settings.from_env(env))


def test_defaults_on_cpus() -> None:
    p = plan()
    assert (p.ingress_replicas, p.model_replicas, p.model_gpus, p.model_threads) == (2, 2, 0.0, 1)
    assert p.batch_size == 4 and p.batch_wait_s == 0.005
    assert p.windows_in_flight == 4  # 4 per batch x 2 model replicas, shared by 2 ingress replicas
    assert p.sessions_per_ingress == 6  # 6 streams per model thread x 2 replicas / 2 ingress
    assert p.app_name == "wirescribe" and p.model_app_name == "wirescribe-model"
    assert p.max_replicas_per_node is None


def test_the_ingress_app_batches_nothing_itself() -> None:
    s = plan().ingress_settings
    assert s.batch_size == 1 and s.scheduler_workers == 4 and s.max_sessions == 6


def test_serve_limits_sit_above_the_apps() -> None:
    p = plan(STT_MAX_SESSIONS="20", STT_MAX_FILE_QUEUE="8")
    assert p.sessions_per_ingress == 20
    assert p.ingress_max_ongoing > 20 + 1 + 8  # sessions, a file job and its queue, and /health
    assert p.model_max_ongoing >= p.windows_in_flight * p.ingress_replicas
    assert p.model_max_ongoing >= p.batch_size


def test_graceful_timeout_covers_a_whole_session() -> None:
    assert plan().graceful_shutdown_s == 3 * 3600 + 10
    assert plan(STT_MAX_SESSION_WALL_SECONDS="600", STT_SHUTDOWN_GRACE="5").graceful_shutdown_s == 605
    assert plan(STT_MAX_SESSION_WALL_SECONDS="0").graceful_shutdown_s > 3600
    assert plan(STT_SERVE_GRACEFUL_SHUTDOWN_S="42").graceful_shutdown_s == 42


def test_gpu_replicas() -> None:
    p = plan(STT_DEVICE="cuda", STT_SERVE_MODEL_REPLICAS="3", STT_SERVE_INGRESS_REPLICAS="4")
    assert p.model_gpus == 1.0 and p.batch_size == 8
    assert p.windows_in_flight == 6  # 8 x 3 / 4
    assert p.sessions_per_ingress == 12  # 16 per GPU replica x 3 / 4
    assert p.model_config.device == "cuda"
    q = plan(STT_SERVE_MODEL_GPUS="0.5", STT_SERVE_BATCH_SIZE="16")
    assert q.model_gpus == 0.5 and q.batch_size == 16 and q.model_config.device == "cuda"


def test_model_threads_follow_its_cpus() -> None:
    assert plan(STT_SERVE_MODEL_CPUS="4").model_config.cpu_threads == 4
    assert plan(STT_SERVE_MODEL_CPUS="0.5").model_config.cpu_threads == 1
    assert plan(STT_SERVE_MODEL_CPUS="4", STT_CPU_THREADS="2").model_config.cpu_threads == 2


def test_bad_values_name_the_variable() -> None:
    for name, value in [
        ("STT_SERVE_PROXY_LOCATION", "Everywhere"),
        ("STT_SERVE_MODEL_REPLICAS", "0"),
        ("STT_SERVE_BATCH_SIZE", "many"),
        ("STT_SERVE_BATCH_WAIT_MS", "5000"),
    ]:
        try:
            Settings.from_env({name: value})
        except SettingsError as e:
            assert name in str(e)
        else:
            raise AssertionError(f"{name}={value} was accepted")
    assert Settings.from_env({"STT_SERVE_PROXY_LOCATION": "headonly"}).cluster.proxy_location == "HeadOnly"
