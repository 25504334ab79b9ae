"""nginx.conf from serving/nginx.conf.j2: each mode routes as it says, and nginx accepts every one."""

import shutil
import subprocess

import pytest

from serving import traffic

STABLE, CANDIDATE = traffic.Backend("100", (41001, 41004)), traffic.Backend("200", (41002, 41005))
MONITOR = traffic.Service("monitor", 41003, ("/v1/feedback", "/monitor"))


def _render(mode: str, tmp_path, percent: float = 0.0, services=()) -> str:
    candidate = None if mode == traffic.SINGLE else CANDIDATE
    state = traffic.Traffic(mode, STABLE, candidate, percent, generation=3, services=services)
    return traffic.render(state, 8500, str(tmp_path), 8501)


def test_each_mode_routes_default_requests_as_it_says(tmp_path):
    shadow, canary = _render(traffic.SHADOW, tmp_path), _render(traffic.CANARY, tmp_path, 12.5)
    assert "mirror /_shadow;" in shadow and "mirror /_shadow;" not in canary
    assert "proxy_pass http://shadow_v200/v1/models/taxi:predict;" in shadow  # the copy goes to the candidate
    assert "upstream shadow_v200" not in canary and "location = /_shadow" not in canary
    assert 'split_clients "${traffic_key}" $default_pool { 12.5% v200; * v100; }' in canary
    for mode in (traffic.SINGLE, traffic.BLUE_GREEN, traffic.SHADOW):
        rendered = _render(mode, tmp_path)
        assert "split_clients" not in rendered and 'map "" $default_pool { default v100; }' in rendered
    assert "canary v200;" in shadow and "canary v200;" in canary
    assert "canary v200;" not in _render(traffic.BLUE_GREEN, tmp_path)
    assert '"generation": 3' in canary and "listen 127.0.0.1:8500;" in canary


def test_an_attached_service_gets_its_exact_paths_on_the_control_listener_only(tmp_path):
    rendered = _render(traffic.SINGLE, tmp_path, services=(MONITOR,))
    public, control = rendered.split("listen 127.0.0.1:8501;")
    assert "listen 127.0.0.1:8500;" in public and "/_traffic" not in public
    for path in MONITOR.paths:
        assert f"location = {path} {{" in control and path not in public
    assert control.count("proxy_pass http://127.0.0.1:41003;") == 2 and "location = /_traffic" in control


@pytest.mark.skipif(
    shutil.which("nginx") is None, reason="nginx is not installed (apt-get install nginx-light)"
)
@pytest.mark.parametrize("mode", traffic.MODES)
def test_nginx_accepts_the_configuration_of_every_mode(mode, tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text(_render(mode, tmp_path, 5.0, services=(MONITOR,)))
    checked = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
