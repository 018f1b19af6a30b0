import pytest

from fabric_ops.config.rendering import TemplateRenderError, render_template


@pytest.fixture
def templates(tmp_path):
    (tmp_path / "t").mkdir()
    ok = "hostname {{ hostname }}\n{% for i in interfaces %}interface {{ i }}\n{% endfor %}"
    (tmp_path / "t" / "ok.j2").write_text(ok)
    (tmp_path / "t" / "missing.j2").write_text("hostname {{ hostname }}\n!\nrouter bgp {{ asn }}\n")
    (tmp_path / "t" / "syntax.j2").write_text("hostname {{ hostname }}\n{% if %}\n")
    (tmp_path / "t" / "escape.j2").write_text("{{ ''.__class__.__mro__ }}\n")
    return tmp_path


def test_renders(templates):
    text = render_template("t/ok.j2", {"hostname": "leaf1", "interfaces": ["Ethernet1/1"]}, templates)
    assert text == "hostname leaf1\ninterface Ethernet1/1\n"


def test_missing_variable_names_template_line_and_variable(templates):
    with pytest.raises(TemplateRenderError) as excinfo:
        render_template("t/missing.j2", {"hostname": "leaf1"}, templates)
    assert str(excinfo.value) == "t/missing.j2:3: 'asn' is undefined"


def test_syntax_error_names_the_line(templates):
    with pytest.raises(TemplateRenderError, match=r"^t/syntax.j2:2: syntax error"):
        render_template("t/syntax.j2", {"hostname": "x"}, templates)


def test_sandbox_blocks_python_internals(templates):
    with pytest.raises(TemplateRenderError, match=r"unsafe|__class__"):
        render_template("t/escape.j2", {}, templates)


def test_unknown_template(templates):
    with pytest.raises(TemplateRenderError, match="template not found"):
        render_template("t/nope.j2", {}, templates)
