"""Chinese commercial cryptography (商用密码): SM3/SM4/SM2 known answers, password hashing,
the SM4 keyring, the key store, the SM2 login envelope and the browser helper (via Node).

No database needed.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import modes
from gmssl.sm2 import CryptSM2

from spatial.errors import ConfigurationError, InvalidInput
from spatial.security import keystore, login_envelope, passwords, sm2, sm3, sm4
from spatial.security.keystore import KeyStore, rotate_sm4
from spatial.security.login_envelope import envelope_json, is_sealed, open_password, seal_password
from spatial.security.passwords import PasswordPolicy, hash_password, needs_rehash, verify_password
from spatial.security.sm4 import CryptoError, Keyring, mask_id_number, mask_name, mask_phone

ROOT = Path(__file__).resolve().parents[1]
SM_CRYPTO = ROOT / "web" / "static" / "vendor" / "sm-crypto" / "sm2.js"
LOGIN_JS = ROOT / "web" / "static" / "js" / "sm2-login.js"

# GB/T 32905-2016 Appendix A.
SM3_VECTORS = [
    (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
]

# GM/T 0003.5-2012 / GB/T 32918.5-2017 example on the recommended curve ("encryption standard").
KAT_D = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"
KAT_PUBLIC = (
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
).lower()
KAT_K = "59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21"
KAT_PLAIN = b"encryption standard"
KAT_CIPHER = (  # C1 (x1 starts with "04"!) ‖ C3 ‖ C2
    "04EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73"
    "E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0"
    "59983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766"
    "21886CA989CA9C7D58087307CA93092D651EFA"
).lower()


# -- SM3 ------------------------------------------------------------------------------------------


@pytest.fixture(params=["openssl", "gmssl"])
def sm3_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "openssl" and not sm3._detect_openssl_sm3():
        pytest.skip("this OpenSSL has no SM3; the gmssl fallback is in use")
    monkeypatch.setattr(sm3, "OPENSSL_SM3", request.param == "openssl")
    return request.param


@pytest.mark.parametrize(("message", "digest"), SM3_VECTORS)
def test_sm3_standard_vectors(sm3_backend: str, message: bytes, digest: str) -> None:
    assert sm3.sm3_hex(message) == digest
    assert sm3.sm3(message) == bytes.fromhex(digest)
    assert sm3.GmsslSm3(message).hexdigest() == digest


def test_hmac_sm3_is_rfc2104(sm3_backend: str) -> None:
    for key in (b"k", b"key" * 30):  # shorter and longer than the 64-byte block
        k = sm3.sm3(key) if len(key) > 64 else key
        k = k.ljust(64, b"\0")
        inner = sm3.sm3(bytes(b ^ 0x36 for b in k) + b"message")
        expected = sm3.sm3(bytes(b ^ 0x5C for b in k) + inner)
        assert sm3.hmac_sm3(key, b"message") == expected


def test_sm3_backends_agree_on_hmac_and_pbkdf2(monkeypatch: pytest.MonkeyPatch) -> None:
    if not sm3._detect_openssl_sm3():
        pytest.skip("this OpenSSL has no SM3")
    results = {}
    for openssl in (True, False):
        monkeypatch.setattr(sm3, "OPENSSL_SM3", openssl)
        results[openssl] = (
            sm3.hmac_sm3(b"secret", "数据".encode()),
            sm3.pbkdf2_sm3(b"pw", b"salt-16-bytes...", 3, 40),  # two blocks
        )
    assert results[True] == results[False]
    assert len(results[True][1]) == 40
    with pytest.raises(ValueError):
        sm3.pbkdf2_sm3(b"pw", b"salt", 0)


# -- SM4 ------------------------------------------------------------------------------------------

SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")


def test_sm4_standard_block_vectors() -> None:
    """GB/T 32907-2016 Appendix A: one block, then the same block encrypted 1,000,000 times."""
    enc = sm4.sm4_cipher(SM4_KEY, modes.ECB()).encryptor()
    assert enc.update(SM4_KEY).hex() == "681edf34d206965e86b3e94f536e4246"
    block, update = SM4_KEY, enc.update
    for _ in range(1_000_000):
        block = update(block)
    assert block.hex() == "595298c7c6fd271f0402f804c33d3f66"


def test_sm4_gcm_rfc8998_vector() -> None:
    nonce = bytes.fromhex("00001234567800000000ABCD")
    aad = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    plain = bytes.fromhex("".join(c * 16 for c in "ABCDEFEA"))
    enc = sm4.sm4_cipher(SM4_KEY, modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(aad)
    body = enc.update(plain) + enc.finalize()
    assert body.hex().upper() == (
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
    )
    assert enc.tag.hex().upper() == "83DE3541E4C2B58177E065A9BF7B62EC"


# -- SM2 ------------------------------------------------------------------------------------------


def test_sm2_known_answer() -> None:
    assert sm2.Sm2KeyPair.from_private(KAT_D).public_hex == KAT_PUBLIC
    assert sm2.decrypt(KAT_D, KAT_CIPHER) == KAT_PLAIN
    assert sm2.decrypt(KAT_D, "04" + KAT_CIPHER.upper()) == KAT_PLAIN
    assert sm2._encrypt_with_k(KAT_PUBLIC, KAT_PLAIN, int(KAT_K, 16)) == KAT_CIPHER


def test_sm2_roundtrip_and_gmssl_interop() -> None:
    pair = sm2.Sm2KeyPair.generate()
    assert 1 <= int(pair.private_hex, 16) <= sm2.N - 2
    assert len(pair.private_hex) == 64 and len(pair.public_hex) == 128 and pair.matches()
    assert pair.public_hex_04 == "04" + pair.public_hex
    message = "巡查员 password ✓".encode()
    cipher = sm2.encrypt(pair.public_hex, message)
    assert len(cipher) == 2 * (64 + 32 + len(message))
    assert sm2.decrypt(pair.private_hex, cipher) == message
    assert sm2.encrypt(pair.public_hex_04, message) != cipher  # random k, 04 prefix accepted
    gm = CryptSM2(private_key=pair.private_hex, public_key="", mode=1)
    gm.public_key = pair.public_hex  # (its constructor's lstrip("04") can corrupt keys)
    assert gm.decrypt(bytes.fromhex(cipher)) == message
    assert sm2.decrypt(pair.private_hex, gm.encrypt(message).hex()) == message


def test_sm2_rejects_tampering_wrong_key_and_garbage() -> None:
    pair = sm2.Sm2KeyPair.generate()
    cipher = sm2.encrypt(pair.public_hex, b"secret password")
    for index in (10, 128 + 10, len(cipher) - 2):  # C1, C3, C2
        flipped = cipher[:index] + format(int(cipher[index], 16) ^ 1, "x") + cipher[index + 1 :]
        with pytest.raises(CryptoError):
            sm2.decrypt(pair.private_hex, flipped)
    with pytest.raises(CryptoError):
        sm2.decrypt(sm2.Sm2KeyPair.generate().private_hex, cipher)
    for garbage in ("", "zz", cipher[:-1], cipher[:200], "00" * 120, None):
        with pytest.raises(CryptoError):
            sm2.decrypt(pair.private_hex, garbage)  # type: ignore[arg-type]
    for bad_private in ("", "0", f"{sm2.N:064x}", "not hex"):
        with pytest.raises(CryptoError):
            sm2.decrypt(bad_private, cipher)
    for bad_public in ("", "04" + "00" * 64, pair.public_hex[:-2] + "00", "zz" * 64):
        with pytest.raises(ValueError):
            sm2.encrypt(bad_public, b"x")
    with pytest.raises(ValueError):
        sm2.encrypt(pair.public_hex, b"")


# -- passwords ------------------------------------------------------------------------------------


def test_password_hash_and_verify() -> None:
    encoded = hash_password("Xunjian-2024!", 1000)
    scheme, salt, digest = encoded.split("$")[1], encoded.split("$")[3], encoded.split("$")[4]
    assert scheme == "pbkdf2-sm3" and "$i=1000$" in encoded
    assert len(passwords._unb64(salt)) == 16 and len(passwords._unb64(digest)) == 32
    assert verify_password("Xunjian-2024!", encoded)
    assert not verify_password("xunjian-2024!", encoded)
    assert not verify_password("", encoded)
    assert hash_password("Xunjian-2024!", 1000) != encoded  # fresh salt
    assert verify_password("Ｘｕｎｊｉａｎ－２０２４！", encoded)  # full-width input (NFKC)
    salt_raw = passwords._unb64(salt)
    expected = sm3.pbkdf2_sm3(b"Xunjian-2024!", salt_raw, 1000)
    assert passwords._unb64(digest) == expected
    with pytest.raises(ValueError):
        hash_password("x", 0)


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plaintext",
        "$pbkdf2-sm3$i=1000$",
        "$pbkdf2-sha256$i=1000$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$pbkdf2-sm3$i=0$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$pbkdf2-sm3$i=99999999$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$pbkdf2-sm3$i=1000$!!!!AAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$pbkdf2-sm3$i=1000$AAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$pbkdf2-sm3$i=1000$AAAAAAAAAAAAAAAAAAAAAA$AAAA$extra",
    ],
)
def test_verify_password_malformed_is_false(encoded: str) -> None:
    assert verify_password("anything", encoded) is False
    assert needs_rehash(encoded, 1000) is True


def test_needs_rehash() -> None:
    encoded = hash_password("Xunjian-2024!", 1000)
    assert not needs_rehash(encoded, 1000)
    assert not needs_rehash(encoded, 500)  # never downgrade
    assert needs_rehash(encoded, 2000)


def test_password_policy() -> None:
    policy = PasswordPolicy(min_length=10, min_classes=3)
    assert policy.problems("Xunjian-2024!", "zhangsan") == []
    assert policy.problems("短Pw1!", "zhangsan") == ["at least 10 characters (密码长度不足)"]
    (classes,) = policy.problems("abcdefghijkl", "zhangsan")
    assert "at least 3 of" in classes and "(字符类型不足)" in classes
    problems = policy.problems("ZhangSan-2024!", "zhangsan")
    assert problems == ["must not contain the user name (密码不能包含用户名)"]
    assert len(policy.problems("", "")) == 2
    assert PasswordPolicy(6, 1).problems("aaaaaa", "ab") == []  # short names are not checked


# -- SM4 keyring ----------------------------------------------------------------------------------


def test_keyring_encrypt_decrypt_and_tamper() -> None:
    ring = Keyring.generate()
    token = ring.encrypt("320982199001011234", aad=b"person:7:id_number")
    prefix, kid, body = token.split("$")
    assert prefix == "sm4gcm" and kid == ring.primary and "=" not in body
    assert ring.decrypt(token, aad=b"person:7:id_number") == "320982199001011234"
    assert ring.encrypt("x") != ring.encrypt("x")  # random nonce
    assert ring.decrypt(ring.encrypt("")) == ""
    assert ring.decrypt(ring.encrypt("张三丰")) == "张三丰"
    with pytest.raises(CryptoError):
        ring.decrypt(token, aad=b"person:8:id_number")  # moved to another row
    flipped = body[:-3] + ("A" if body[-3] != "A" else "B") + body[-2:]
    for bad in (
        f"sm4gcm${kid}${flipped}",
        f"sm4gcm$unknown${body}",
        f"sm4gcm${kid}$AAAA",
        f"sm4gcm${kid}$***",
        "plaintext",
        "sm4gcm$a$b$c",
    ):
        with pytest.raises(CryptoError):
            ring.decrypt(bad, aad=b"person:7:id_number")
    impostor = Keyring({kid: bytes(16)}, kid, bytes(32))  # same kid, another key
    with pytest.raises(CryptoError):
        impostor.decrypt(token, aad=b"person:7:id_number")


def test_keyring_rotation_and_persistence(tmp_path: Path) -> None:
    ring = Keyring.generate()
    old_kid = ring.primary
    old = ring.encrypt("13812345678")
    new_kid = ring.rotate()
    assert new_kid != old_kid and ring.primary == new_kid and set(ring.keys) == {old_kid, new_kid}
    new = ring.encrypt("13812345678")
    assert ring.kid_of(old) == old_kid and sm4.kid_of(new) == new_kid
    assert ring.decrypt(old) == ring.decrypt(new) == "13812345678"
    assert ring.needs_reencrypt(old) and not ring.needs_reencrypt(new)
    path = tmp_path / "ring.json"
    ring.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = Keyring.load(path)
    assert loaded == ring and loaded.decrypt(old) == "13812345678"
    path.write_text('{"keys": {}}')
    with pytest.raises(ConfigurationError):
        Keyring.load(path)


def test_blind_index() -> None:
    ring = Keyring.generate()
    index = ring.blind_index("13812345678")
    assert len(index) == 64 and int(index, 16) >= 0
    assert ring.blind_index(" 138 1234 5678 ") == index
    assert ring.blind_index("１３８１２３４５６７８") == index  # full-width digits (NFKC)
    assert ring.blind_index("13812345679") != index
    assert ring.blind_index("32098219900101123x") == ring.blind_index("32098219900101123X")
    assert Keyring.generate().blind_index("13812345678") != index  # keyed
    assert ring.blind_index("13812345678") == index  # stable across rotation
    ring.rotate()
    assert ring.blind_index("13812345678") == index
    expected = sm3.hmac_sm3(ring.index_key, b"13812345678").hex()
    assert index == expected


@pytest.mark.parametrize(
    ("func", "value", "masked"),
    [
        (mask_phone, "13812345678", "138****5678"),
        (mask_phone, "+8613812345678", "+86*******5678"),
        (mask_phone, "1234", "1**4"),
        (mask_phone, "12", "**"),
        (mask_phone, "", ""),
        (mask_phone, None, ""),
        (mask_id_number, "320982199001011234", "320982********1234"),
        (mask_id_number, "32098219900101123X", "320982********123X"),
        (mask_id_number, "12345", "1***5"),
        (mask_name, "张三丰", "张**"),
        (mask_name, "张三", "张*"),
        (mask_name, "张", "*"),
        (mask_name, " 欧阳娜娜 ", "欧***"),
        (mask_name, None, ""),
    ],
)
def test_masks(func: Callable[[str | None], str], value: str | None, masked: str) -> None:
    assert func(value) == masked


# -- key store ------------------------------------------------------------------------------------


def test_keystore_ensure_load_and_rotate(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    with pytest.raises(ConfigurationError) as missing:
        KeyStore.load(key_dir)
    assert "sm2.json" in str(missing.value) and "cityops keys init" in str(missing.value)
    store = KeyStore.ensure(key_dir)
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    for name in (keystore.SM2_FILE, keystore.KEYRING_FILE, keystore.TOKEN_FILE):
        assert stat.S_IMODE((key_dir / name).stat().st_mode) == 0o600
    assert len(store.token_key) == 32 and store.sm2.matches() and store.key_dir == key_dir
    again = KeyStore.ensure(key_dir)  # never overwrites
    assert again == KeyStore.load(key_dir) == store
    kid = rotate_sm4(key_dir)
    rotated = KeyStore.load(key_dir)
    assert rotated.keyring.primary == kid and set(store.keyring.keys) < set(rotated.keyring.keys)
    assert rotated.sm2 == store.sm2 and rotated.token_key == store.token_key
    (key_dir / keystore.TOKEN_FILE).unlink()
    with pytest.raises(ConfigurationError, match="token.key"):
        KeyStore.load(key_dir)
    (key_dir / keystore.TOKEN_FILE).write_text("short\n")
    with pytest.raises(ConfigurationError, match="token.key"):
        KeyStore.load(key_dir)


def test_keystore_refuses_mismatched_sm2_pair(tmp_path: Path) -> None:
    store = KeyStore.ensure(tmp_path / "keys")
    other = sm2.Sm2KeyPair.generate()
    doc = {"private_hex": store.sm2.private_hex, "public_hex": other.public_hex}
    (tmp_path / "keys" / keystore.SM2_FILE).write_text(json.dumps(doc))
    with pytest.raises(ConfigurationError, match="does not match"):
        KeyStore.load(tmp_path / "keys")


# -- login envelope -------------------------------------------------------------------------------

NOW = 1_750_000_000_000


@pytest.fixture(scope="module")
def server_pair() -> sm2.Sm2KeyPair:
    return sm2.Sm2KeyPair.generate()


def test_envelope_roundtrip(server_pair: sm2.Sm2KeyPair) -> None:
    sealed = seal_password(server_pair.public_hex, "Xunjian-2024!密码", now_ms=NOW)
    assert sealed.startswith("sm2:") and is_sealed(sealed)
    opened = open_password(server_pair.private_hex, sealed, max_age_s=300, now_ms=NOW + 5_000)
    assert opened.password == "Xunjian-2024!密码" and opened.issued_ms == NOW
    assert len(opened.nonce) == 32 and int(opened.nonce, 16) >= 0
    again = open_password(server_pair.private_hex, seal_password(server_pair.public_hex, "x"), 300)
    assert again.password == "x" and again.nonce != opened.nonce
    assert not is_sealed("Xunjian-2024!") and not is_sealed("sm2:abc") and not is_sealed(None)


def _refusal(server_pair: sm2.Sm2KeyPair, sealed: str, now_ms: int = NOW) -> str:
    with pytest.raises(InvalidInput) as caught:
        open_password(server_pair.private_hex, sealed, max_age_s=300, now_ms=now_ms)
    assert [issue.field for issue in caught.value.errors] == ["password"]
    return caught.value.errors[0].message


def test_envelope_refusals(server_pair: sm2.Sm2KeyPair) -> None:
    sealed = seal_password(server_pair.public_hex, "pw", now_ms=NOW)
    assert "过期" in _refusal(server_pair, sealed, now_ms=NOW + 301_000)
    assert "时间偏差" in _refusal(server_pair, sealed, now_ms=NOW - 61_000)
    assert open_password(server_pair.private_hex, sealed, 300, now_ms=NOW - 59_000).password
    assert "未加密" in _refusal(server_pair, "plain password")
    assert "未加密" in _refusal(server_pair, "sm2:" + "ab" * 5000)  # over the size limit
    other = sm2.Sm2KeyPair.generate()
    assert "无法解密" in _refusal(server_pair, seal_password(other.public_hex, "pw", NOW))
    assert "无法解密" in _refusal(
        server_pair, sealed[:-2] + ("00" if sealed[-2:] != "00" else "11")
    )
    for payload in (
        b"not json at all " * 8,
        json.dumps({"p": "pw", "t": NOW}).encode() + b" " * 40,
        json.dumps({"p": "pw", "t": str(NOW), "n": "ab" * 16}).encode(),
        json.dumps({"p": 1, "t": NOW, "n": "ab" * 16}).encode(),
        json.dumps({"p": "pw", "t": True, "n": "ab" * 16}).encode(),
        json.dumps({"p": "pw", "t": NOW, "n": "xyz" * 11}).encode(),
        b"\xff\xfe" * 40,
        b"[" * 3000,
    ):
        bad = "sm2:" + sm2.encrypt(server_pair.public_hex, payload)
        assert "格式错误" in _refusal(server_pair, bad), payload


# -- the browser helper, run by Node -------------------------------------------------------------

NODE_SCRIPT = r"""
const job = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const sm2 = require(job.smCrypto);
const login = require(job.loginJs);
const keypair = sm2.generateKeyPairHex();
// A browser-like global (window/self, window.crypto; no module/require) for the script tags.
const fs = require('fs');
const vm = require('vm');
const win = { crypto: require('crypto').webcrypto };
win.window = win;
win.self = win;
vm.createContext(win);
vm.runInContext(fs.readFileSync(job.smCrypto, 'utf8'), win, { filename: 'sm2.js' });
vm.runInContext(fs.readFileSync(job.loginJs, 'utf8'), win, { filename: 'sm2-login.js' });
process.stdout.write(JSON.stringify({
  browserSealed: win.CityopsSm2.sealPassword(job.publicKey, job.password),
  sealed: login.sealPassword(job.publicKey, job.password),
  sealed04: login.sealPassword('04' + job.publicKey.toUpperCase(), job.password),
  envelope: login.envelopeJson(job.password, job.t, job.n),
  pyDecrypted: sm2.doDecrypt(job.pyCipher, job.privateKey, 1),
  katDecrypted: sm2.doDecrypt(job.katCipher, job.katPrivate, 1),
  jsKeypair: keypair,
  jsCipher: sm2.doEncrypt(job.password, keypair.publicKey, 1),
  badKey: (function () {
    try { login.sealPassword('1234', 'x'); return 'accepted'; } catch (e) { return e.message; }
  }()),
}));
"""

PASSWORD = 'Xunjian-2024!巡查 "quoted" \\ back\nslash 🚓'


@pytest.fixture(scope="module")
def node_run(server_pair: sm2.Sm2KeyPair) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is not installed: add nodejs to ops/test-deps.sh (apt-get install nodejs)"
        )
    job = {
        "smCrypto": str(SM_CRYPTO),
        "loginJs": str(LOGIN_JS),
        "publicKey": server_pair.public_hex,
        "privateKey": server_pair.private_hex,
        "password": PASSWORD,
        "t": NOW,
        "n": "0f" * 16,
        "pyCipher": sm2.encrypt(server_pair.public_hex, PASSWORD.encode()),
        "katCipher": KAT_CIPHER,
        "katPrivate": KAT_D,
    }
    done = subprocess.run(
        [node, "-e", NODE_SCRIPT],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_browser_helper_seals_what_python_opens(
    server_pair: sm2.Sm2KeyPair, node_run: dict
) -> None:
    for sealed in (node_run["sealed"], node_run["sealed04"], node_run["browserSealed"]):
        assert is_sealed(sealed)
        opened = open_password(server_pair.private_hex, sealed, max_age_s=300)
        assert opened.password == PASSWORD
    assert node_run["envelope"] == envelope_json(PASSWORD, NOW, "0f" * 16)
    assert node_run["badKey"] == "not an SM2 public key"


def test_sm_crypto_and_python_interoperate(node_run: dict) -> None:
    assert node_run["pyDecrypted"] == PASSWORD  # Python encrypt -> sm-crypto doDecrypt
    assert node_run["katDecrypted"] == KAT_PLAIN.decode()
    js_pair = node_run["jsKeypair"]
    pair = sm2.Sm2KeyPair.from_private(js_pair["privateKey"])
    assert "04" + pair.public_hex == js_pair["publicKey"]  # same key derivation
    assert sm2.decrypt(pair.private_hex, node_run["jsCipher"]).decode() == PASSWORD


def test_browser_assets_are_local() -> None:
    text = LOGIN_JS.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    assert (SM_CRYPTO.parent / "LICENSE").is_file()
    assert "0.5.8" in (SM_CRYPTO.parent / "README.md").read_text(encoding="utf-8")
    assert login_envelope.PREFIX == "sm2:"
