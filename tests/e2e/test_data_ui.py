"""The data pages in a real browser: upload a CSV through the form (PUT with the file as the body),
land on the asset page with its rows, columns and report; a bad file's error shows in the form."""

from __future__ import annotations


def test_upload_lands_on_the_asset_page(page, ui_server):
    _, train_csv = ui_server
    page.goto("/ui/data")
    page.get_by_label("Data file", exact=True).set_input_files(str(train_csv))
    assert page.get_by_label("Asset name").input_value() == "reviews"
    page.get_by_label("Check rows for task").select_option("text-classification")
    page.get_by_role("button", name="Upload").dblclick()  # disabled while the upload runs
    page.wait_for_url("**/ui/data/reviews:1")
    assert page.posts == ["/api/v1/data/reviews/upload"]
    assert page.locator("#asset-rows").inner_text() == "80"
    columns = page.locator("#asset-columns tbody tr")
    assert columns.count() == 2
    assert "review" in columns.nth(0).inner_text() and "sentence1" in columns.nth(0).inner_text()
    assert "stars" in columns.nth(1).inner_text() and "label" in columns.nth(1).inner_text()
    counts = page.locator("#label-counts-train").inner_text()
    assert "neg" in counts and "pos" in counts and "40" in counts
    assert len(page.locator("#asset-sha").inner_text()) == 64
    assert "--train reviews:1" in page.locator("#finetune-cmd").inner_text()
    twin = page.request.get(page.locator("a.json-twin").get_attribute("href")).json()
    assert twin["rows"] == 80 and twin["columns"] == ["review", "stars"]

    page.get_by_role("link", name="Data assets").first.click()
    row = page.locator('#assets-table tr[data-asset="reviews:1"]')
    assert "80" in row.inner_text() and "csv" in row.inner_text()
    listing = page.request.get(page.locator("a.json-twin").get_attribute("href")).json()
    assert any(a["name"] == "reviews" and a["rows"] == 80 for a in listing["items"])
    row.get_by_role("link", name="reviews").click()
    page.wait_for_url("**/ui/data/reviews:1")


def test_bad_files_show_the_error_next_to_the_form(page, tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_text('review,stars\n"an unterminated quote,pos\ngood movie,pos\n', encoding="utf-8")
    page.goto("/ui/data")
    page.get_by_label("Data file", exact=True).set_input_files(str(broken))
    page.get_by_label("Check rows for task").select_option("text-classification")
    page.get_by_role("button", name="Upload").click()
    alert = page.locator("#upload-form #upload-error [role=alert]")
    alert.wait_for()
    text = alert.inner_text()
    assert "broken.csv" in text and "line 2" in text and "unbalanced double quote" in text
    # message, hint and the problem each said once
    assert text.count("unbalanced double quote") == 1 and text.count("row has 1 field(s)") == 1, text
    assert "/tmp" not in text  # the uploaded file's name, not the server's temporary copy
    assert page.get_by_label("Data file", exact=True).get_attribute("aria-invalid") == "true"
    assert page.url.endswith("/ui/data")

    other = tmp_path / "notes.docx"
    other.write_bytes(b"not a table")
    page.get_by_label("Data file", exact=True).set_input_files(str(other))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_function("document.querySelector('#upload-error').textContent.includes('.docx')")
    assert "cannot tell the format" in alert.inner_text()

    page.get_by_label("Asset name").fill("-bad name")
    page.get_by_role("button", name="Upload").click()
    assert page.get_by_label("Asset name").get_attribute("aria-invalid") == "true"
    assert "invalid data asset name" in alert.inner_text()
