"""Captured traffic of a real v2 login and `f` answer, published in
lemourin/coro-cloudstorage test/mega_test.cc (spec §9.3, §9.6)."""

EMAIL = "mega-test@lemourin.net"
PASSWORD = "test-password"
SALT = "j1uuKZeM4mjX-clk_D2R-Cerhr1CrzpBkl-VAoki80U"
UH = "s3611_8e4daBC8DcihjrAg"
USER = "wEkp7kJQ8P4"
K = "e1DrGVah071Lla-UBz8EOw"
SID = "LN3KEM3MSrrzp8ValrFuL3dFa3A3a0pROFA0a77Ucyxi6RY2Fgv5BsnDqg"
CSID = (
    "CABxVLg-Bfswny3SIPbdzvuUUrg6C8opVScwJRhttdvaGEP7h2_acWB8SzGO0CCe1elFCDfGQ4pGlTZKks9yGqvP9YyqQx4QNCkeBBTZMh4ZlUhj"
    "vmyTScsitJ7Pi8LwcP1-oB98lronBs8bjfROg9PlGGjwyOPSAhaVZZO6dQig58S7RKg2DjcwsPxQLBGncR2Bbgtb8v4katqDVnQQmaeD6LD4zYCM"
    "VHk8ov-FjNXsLsox8EKxFpquGNpzOb39FzUT4PAxF1VgcPe82l8RUmE6YBjcW7DqBoB3iyZMDMA8rkev9KBcrUm14xSaNN1ZfL80B6xpJD2hoe8K"
    "9zfl6hSf")
PRIVK = (
    "NOH8s2EH0aS2xiR7G9okkq-FKEN3XSakv4mRHCFL8hTdBmpYaEv_OjztJcybiJAkDxAQp52mrOtrKR7tHbIAQcm4GnxDslDvKsvbU3Eq_Dm5sPus"
    "8KdPlE7dhILA8KuqdlVP3ttKMBp3Ci7d6SgChbP4OX2xRGjkQVcwOCMb2jdo-nmOIi8v_3QprFw4yzmenK_ERxXBJdMyhRieC9KX3PMQr-uuI1SP"
    "onKrw_866Yz2gIW82bvnXRVsrzao-IqcTO4Hp3RYz5eJAdb5SriK7ZEy-PhgNaGeDXi2PQXAivGmwNUrxrHbNJS2E92cmzfPiBPj0TuXcOJV8DUd"
    "UB54eMF4YA0HtJ9yuf--OVLoRLDQgJnt2mwyfoGcfLrHjSfNgZxY7e6B0mt0a1tl9T6-0sIYLBZVFhUVKzYBoBZGqsQ2xzd7JWgHY8POfaX-aAXl"
    "v8OcMSKQGcj2okTAeKqS1K410g2LkSEZKFDLKA4UJYD6xL03LHmXhs5KmO4osIRP7m83tSZX363AksCLIS75r61twSATIzr5xbnrNrLN5R_NkQG6"
    "xjlAuplHSHLuWBawjTNoaSQBYJXEgPnViQfTo_NHTpC98-tfbjR5BQAriucMQRpo0YLMU3t2I5VB7rHkOA_ZAJwI2DfFqyRHDtGdVajBcPItntSS"
    "dNe3xq_30ICkDmnEOpzyHpyu3_nUxWMCbLKcxa7Z7hQgXotosyDc7vXJD8MBP985gHVEx4kfHtvvJO9QxvHRUee-A49CbelLdQz405PDNXK4NtGb"
    "yuGVn_PVMPpdHzTNVITfV0grEB0aRB7PsIl8nVxXTjr8X20uf4sfATJSiXmrIp_fnZHsolnUF62uQtprpwSb8qyQuj0")
PUBK = (
    "CACz_nCKHGAKZ977KY-KXv0Tbu2JGpSo-7FaCqrt63shkLzTObvf5haJVpUQ-3_283L7oFyTBqJsQIXhxrO-9mcBEpfE0FgQzrWZrV5VwcG3M_yj"
    "QVNbnQhLlJ85n1vPg1UTJthFAgZB_ZfVZITjcnWdZUISVP8qu8QZPnfOUGAvtZqiI-T-6A-h55CtJkpxjvItrEyo5BsssvdS912qP6eND8hYl-3j"
    "QhY6A9oYhEPVfyW97pyihY94E4o1U_df1FRC4FDTFMyTbbb4Hcd9sDjxKiTIBtG4Zob05YBzCmR3XJAkM6B4Tk5WdaaOuUpONTOYPdOCGN7I93U9"
    "GpNxmLg_ACAAAAEB")
NODES = [
    {"a": "", "h": "ND0ASLbb", "p": "", "t": 2, "ts": 1705157016, "u": USER},
    {"a": "", "h": "YD8mXbiA", "p": "", "t": 3, "ts": 1705157016, "u": USER},
    {"a": "", "h": "oblm0RzD", "p": "", "t": 4, "ts": 1705157016, "u": USER},
    {"a": "qpYR61ZwVIuN3IiCrulm6c0pFeWqAezwm3oBXAOGNLc", "h": "pblFCRqJ", "k": USER + ":e4zf6XwhnAu5tX99Etl7NA",
     "p": "ND0ASLbb", "t": 1, "ts": 1705163791, "u": USER},
    {"a": "Lli2h2EgGDlAoR8dj-oKGXG-aWRdWS86c4kiPrgBZjL40YNBv3hWvuM8fFMWJJmc-d76lehi3VtQMUxI9CcISQ", "h": "pesFQRQI",
     "k": USER + ":RmHH12ckbtFycJiCS4OTJu7-M2AZwGy6zs-kOnGOtTE", "p": "ND0ASLbb", "s": 13, "t": 0,
     "ts": 1705163822, "u": USER},
]
SN = "k2-dD1whLjU"
