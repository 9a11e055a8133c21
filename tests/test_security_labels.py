"""The security screens show roles, permissions and view menus by what they mean.

Every role, permission and view menu the application registers has a label (a new view that
has none fails here, listing it); the role, user, group and permission screens show the labels in
Chinese, and in English under the English UI; the stored names stay what they were.
"""

from __future__ import annotations

from app.services.bootstrap import required_permissions
from tests.test_zh_raw_values import visible_text


def test_every_role_permission_and_view_menu_the_application_registers_has_a_label(app) -> None:
    from app.security import ROLE_SPEC
    from app.views.security_labels import missing_labels

    sm = app.appbuilder.sm
    with app.test_request_context():
        missing = missing_labels(app, [*ROLE_SPEC, sm.auth_role_admin, sm.auth_role_public],
                                 required_permissions(app))
    assert not missing, ("no label (app/views/security_labels.py, or a permission_label on the view) for:\n"
                         + "\n".join(missing))


def test_a_name_without_a_label_is_shown_in_a_readable_form(app) -> None:
    from app.views.security_labels import permission_label, role_label, view_menu_label

    with app.test_request_context():
        assert view_menu_label("MadeUpThingModelView") == "Made Up Thing"
        assert permission_label("can_frobnicate_all") == "frobnicate all"
        assert role_label("外勤") == "外勤"  # a role an Admin created keeps its name


def _page(client, url: str) -> str:  # noqa: ANN001
    response = client.get(url)
    assert response.status_code == 200, url
    return visible_text(response.get_data(as_text=True))


def test_the_role_screens_show_roles_and_permissions_in_chinese(app, login_as) -> None:
    sm = app.appbuilder.sm
    manager = sm.find_role("Manager")
    admin = login_as("admin")

    listed = _page(admin, "/roles/list/")
    assert {"管理员", "经理", "会计", "审核员", "客服"} <= set(listed.split())
    assert "客户：查看列表、" in listed
    assert "can list" not in listed and "ClientModelView" not in listed and "Accountant" not in listed

    shown = _page(admin, f"/roles/show/{manager.id}")
    assert "经理" in shown and "凭证：" in shown and "过账" in shown
    assert "客户：查看列表、查看详情、新增、编辑、删除" in shown
    assert "客户（接口）：读取、读取表单信息、新建、修改、删除" in shown  # an API's methods
    assert "VoucherModelView" not in shown and "can_" not in shown

    edit = admin.get(f"/roles/edit/{manager.id}").get_data(as_text=True)
    assert ">客户 — 查看列表</option>" in edit
    assert "can list on" not in edit
    assert sm.find_role("Manager").name == "Manager"  # the stored name is the key


def test_the_user_screens_show_role_labels(app, login_as, user_id) -> None:
    admin = login_as("admin")
    listed = _page(admin, "/users/list/")
    assert "会计" in listed and "审核员" in listed
    assert "Accountant" not in listed and "Reviewer" not in listed
    assert "会计" in _page(admin, f"/users/show/{user_id('accountant')}")
    edit = admin.get(f"/users/edit/{user_id('accountant')}").get_data(as_text=True)
    assert ">会计</option>" in edit and ">Accountant</option>" not in edit
    assert "会计" in _page(login_as("accountant"), "/users/userinfo/")


def test_changing_a_users_roles_in_the_labelled_select_stores_the_role(app, login_as, user_id) -> None:
    sm = app.appbuilder.sm
    uid = user_id("reviewer")
    response = login_as("admin").post(f"/users/edit/{uid}", data={
        "first_name": "reviewer", "last_name": "x", "username": "reviewer", "active": "y",
        "email": "reviewer@example.com", "roles": [str(sm.find_role("Accountant").id)]})
    assert response.status_code == 302
    assert [role.name for role in sm.find_user(username="reviewer").roles] == ["Accountant"]


def test_the_permission_lists_show_what_each_permission_means(login_as) -> None:
    admin = login_as("admin")
    permissions = _page(admin, "/permissions/list/?psize_DeskPermissionModelView=1000")  # every one, on one page
    assert "查看列表" in permissions and "can_list" not in permissions
    views = _page(admin, "/viewmenus/list/")
    assert "审计日志" in views
    assert "ClientModelView" not in views and "VoucherApi" not in views
    pairs = _page(admin, "/permissionviews/list/?psize_PermissionViewModelView=1000")
    assert "can_" not in pairs and "ModelView" not in pairs


def test_the_english_ui_keeps_english_names(app, login_as) -> None:
    admin = login_as("admin")
    assert admin.get("/lang/en").status_code == 302
    listed = _page(admin, "/roles/list/")
    assert "Accountant" in listed and "会计" not in listed
    assert "Clients: View list, " in listed
    assert "Accountant" in _page(admin, "/users/list/")
